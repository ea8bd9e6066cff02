/*
 * settings.h: every moat setting, declared once.
 *
 * S(ID, "name", type, "default", min, max, "description")
 *
 * The parser, `moatd -n`, the bounds checks and docs/configuration.md all
 * follow this list; a setting that is not here does not exist.  min and
 * max bound numbers (CONFT_INT, CONFT_SIZE in bytes, CONFT_TIME in seconds) and
 * are ignored for other types.  Defaults are written as they would be in
 * moat.conf and parsed by the same code as the file.
 */
S(RUN_DIRECTORY, "run_directory", CONFT_PATH, "/var/spool/moat", 0, 0,
  "Directory holding the queue database, the control socket, the empty chroot and local maildirs")
S(LISTEN, "listen", CONFT_LISTEN, "127.0.0.1:2525", 0, 0,
  "Addresses and ports to accept SMTP connections on: ip:port or [ipv6]:port, space separated")
S(MYHOSTNAME, "myhostname", CONFT_STR, "", 0, 0,
  "Host name used in the greeting, Received: headers and bounces; empty means the system's name")
S(LOCAL_DOMAINS, "local_domains", CONFT_DOMAINS, "localhost", 0, 0,
  "Domains whose mail is delivered to maildirs under run_directory/maildir")
S(LOCAL_USERS, "local_users", CONFT_WORDS, "", 0, 0,
  "Local parts accepted for local_domains; empty accepts any; postmaster is always accepted")
S(RELAY_DOMAINS, "relay_domains", CONFT_DOMAINS, "", 0, 0,
  "Domains accepted from any client and relayed to relay_host")
S(RELAY_NETWORKS, "relay_networks", CONFT_NETWORKS, "127.0.0.0/8 ::1/128", 0, 0,
  "Client networks that may relay mail to any domain")
S(RELAY_HOST, "relay_host", CONFT_NEXTHOP, "", 0, 0,
  "Next hop for all non-local mail, as [address]:port; empty leaves such mail deferred")
S(BARE_LF_NETWORKS, "bare_lf_networks", CONFT_NETWORKS, "", 0, 0,
  "Client networks whose bare LF line ends are turned into CRLF instead of refused")
S(SMTPD_BANNER_NAME, "smtpd_banner_name", CONFT_STR, "moat", 0, 0,
  "Product name shown after ESMTP in the greeting")
S(SMTPD_LINE_LIMIT, "smtpd_line_limit", CONFT_INT, "2048", 512, 65536,
  "Longest command line accepted, in bytes, CRLF included")
S(SMTPD_RECIPIENT_LIMIT, "smtpd_recipient_limit", CONFT_INT, "1000", 1, 100000,
  "Most recipients accepted for one message")
S(MESSAGE_SIZE_LIMIT, "message_size_limit", CONFT_SIZE, "10240000", 1024, 2147483647,
  "Largest message accepted, in bytes, as counted after dot-stuffing is undone")
S(SMTPD_ERROR_LIMIT, "smtpd_error_limit", CONFT_INT, "20", 1, 1000,
  "Errors a client may cause before the session is closed with 421")
S(SMTPD_TIMEOUT, "smtpd_timeout", CONFT_TIME, "300s", 1, 3600,
  "Longest wait for the next command or data from a client")
S(SMTPD_MAX_SESSIONS, "smtpd_max_sessions", CONFT_INT, "100", 1, 100000,
  "Most SMTP sessions at once; further clients get 421 and are closed")
S(SMTPD_CLIENT_LIMIT, "smtpd_client_limit", CONFT_INT, "50", 1, 100000,
  "Most sessions at once from one client address")
S(SMTPD_VIOLATION_LIMIT, "smtpd_violation_limit", CONFT_INT, "3", 1, 1000,
  "Sessions from one client address killed for a seccomp violation, within smtpd_violation_window, after which that address is refused with 421")
S(SMTPD_VIOLATION_WINDOW, "smtpd_violation_window", CONFT_TIME, "1h", 1, 604800,
  "Window in which smtpd_violation_limit is counted, and how long an address that reached it is refused after its last violation")
S(SHUTDOWN_TIMEOUT, "shutdown_timeout", CONFT_TIME, "30s", 1, 600,
  "At SIGTERM, longest wait for sessions in the middle of a message to finish before they are killed")
S(DELIVERY_AGENTS, "delivery_agents", CONFT_INT, "4", 1, 256,
  "Number of relay delivery-agent processes (each delivers one message at a time)")
S(RELAY_CONNECT_TIMEOUT, "relay_connect_timeout", CONFT_TIME, "30s", 1, 600,
  "Longest wait for a TCP connection to the next hop")
S(RELAY_TIMEOUT, "relay_timeout", CONFT_TIME, "300s", 1, 3600,
  "Longest wait for each reply of the next hop")
S(MINIMAL_BACKOFF_TIME, "minimal_backoff_time", CONFT_TIME, "300s", 1, 86400,
  "Wait before the first retry of a deferred recipient; doubles after each attempt")
S(MAXIMAL_BACKOFF_TIME, "maximal_backoff_time", CONFT_TIME, "4000s", 1, 604800,
  "Longest wait between two attempts for one recipient")
S(MAXIMAL_QUEUE_LIFETIME, "maximal_queue_lifetime", CONFT_TIME, "5d", 1, 8640000,
  "How long a deferred recipient is retried before it is bounced")
S(BOUNCE_QUEUE_LIFETIME, "bounce_queue_lifetime", CONFT_TIME, "5d", 1, 8640000,
  "How long a bounce (null sender) is retried before it is dropped and logged")
S(QUEUE_MIN_FREE, "queue_min_free", CONFT_SIZE, "64M", 0, 1099511627776,
  "Free space the queue's file system must keep; below it new mail gets 452 4.3.1")
S(SMTPD_USER, "smtpd_user", CONFT_STR, "moat-smtpd", 0, 0,
  "System user of smtpd-session processes (when started as root)")
S(QUEUE_USER, "queue_user", CONFT_STR, "moat-queue", 0, 0,
  "System user of the queue-manager; owns run_directory/queue")
S(RELAY_USER, "relay_user", CONFT_STR, "moat-relay", 0, 0,
  "System user of relay delivery agents")
S(LOCAL_USER, "local_user", CONFT_STR, "moat-local", 0, 0,
  "System user of the local delivery agent; owns run_directory/maildir")
S(ADMIN_GROUP, "admin_group", CONFT_STR, "moat-admin", 0, 0,
  "Group whose members (and root) may use moatctl")
S(READONLY_GROUP, "readonly_group", CONFT_STR, "", 0, 0,
  "Group whose members may use moatctl's read-only commands (queue, show, stats, shape); empty means none")
