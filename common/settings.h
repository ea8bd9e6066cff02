/*
 * settings.h: every moat setting, declared once.
 *
 * S(ID, "name", type, "default", min, max, "description")
 * SC(ID, "name", "default", "choice choice ...", "description")
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
  "Domains accepted from any client and relayed onward (transport_maps, relay_host or MX)")
S(RELAY_NETWORKS, "relay_networks", CONFT_NETWORKS, "127.0.0.0/8 ::1/128", 0, 0,
  "Client networks that may relay mail to any domain")
S(RELAY_HOST, "relay_host", CONFT_NEXTHOP, "", 0, 0,
  "Next hop for non-local mail that transport_maps does not route: [host]:port, [host], host or host:port (MX of host), or an smtp:/lmtp: transport (docs/routing.md); empty: MX of the recipient domain")
S(SUBMISSION_LISTEN, "submission_listen", CONFT_LISTEN, "", 0, 0,
  "Addresses and ports of the submission service (RFC 6409, usually port 587), whose TLS is set by submission_tls; empty: none")
S(SMTPS_LISTEN, "smtps_listen", CONFT_LISTEN, "", 0, 0,
  "Addresses and ports where TLS starts at connect (RFC 8314 implicit TLS, usually port 465); empty: none")
SC(SMTPD_TLS, "smtpd_tls", "may", "none may required",
  "TLS on the listen addresses: none (no STARTTLS), may (STARTTLS offered), required (STARTTLS before MAIL)")
SC(SUBMISSION_TLS, "submission_tls", "required", "none may required",
  "TLS on the submission_listen addresses, with the same choices as smtpd_tls")
S(SMTPD_TLS_CERT_FILES, "smtpd_tls_cert_files", CONFT_PATHS, "", 0, 0,
  "PEM certificate chains (leaf first), one file per certificate; the first is the default, others are chosen by SNI; empty: no TLS")
S(SMTPD_TLS_KEY_FILES, "smtpd_tls_key_files", CONFT_PATHS, "", 0, 0,
  "PEM private keys, one per smtpd_tls_cert_files entry in the same order; read by moatd and held by the keyholder only")
S(TRANSPORT_MAPS, "transport_maps", CONFT_TABLE, "", 0, 0,
  "Lookup table file mapping recipient domains to transports (smtp:, lmtp:, mx; see docs/routing.md); empty: none")
S(RELAY_PORT, "relay_port", CONFT_INT, "25", 1, 65535,
  "Port used for deliveries to MX hosts and to next hops written without a port")
S(DNS_SERVERS, "dns_servers", CONFT_WORDS, "", 0, 0,
  "DNS resolvers used for delivery, as address or address:port ([ipv6]:port); empty: those of /etc/resolv.conf")
S(DNS_TIMEOUT, "dns_timeout", CONFT_TIME, "10s", 1, 300,
  "Longest wait for one DNS lookup (all its retries together) before it counts as a temporary failure")
SC(RELAY_TLS, "relay_tls", "may", "none may encrypt verify",
  "Default outbound TLS policy: none, may (STARTTLS when offered), encrypt (TLS required, not verified), verify (TLS with a certificate valid for the host name)")
S(RELAY_TLS_POLICY_MAPS, "relay_tls_policy_maps", CONFT_TABLE, "", 0, 0,
  "Lookup table file mapping next-hop domains to an outbound TLS policy (none, may, encrypt, verify); empty: relay_tls everywhere")
S(RELAY_TLS_CA_FILE, "relay_tls_ca_file", CONFT_PATH, "/etc/ssl/certs/ca-certificates.crt", 0, 0,
  "PEM file of the certificate authorities trusted under the verify policy")
S(RELAY_DESTINATION_CONCURRENCY_LIMIT, "relay_destination_concurrency_limit", CONFT_INT, "20", 1, 1000,
  "Most connections open at once to one next hop (a domain, or a relay or LMTP host)")
S(RELAY_CONNECTION_REUSE_LIMIT, "relay_connection_reuse_limit", CONFT_INT, "100", 1, 100000,
  "Most messages sent over one outbound connection before it is closed")
S(RELAY_CONNECTION_IDLE_TIME, "relay_connection_idle_time", CONFT_TIME, "2s", 1, 300,
  "How long an idle outbound connection is kept open for the next message to the same next hop")
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
S(DELIVERY_AGENTS, "delivery_agents", CONFT_INT, "20", 1, 256,
  "Number of relay delivery-agent processes (each delivers one message at a time): the global limit on outbound connections")
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
S(DELAY_WARNING_TIME, "delay_warning_time", CONFT_TIME, "4h", 0, 8640000,
  "Age of a still undelivered message at which its sender gets one delay warning (RFC 3464 Action: delayed); 0: never")
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
S(KEYHOLDER_USER, "keyholder_user", CONFT_STR, "moat-keys", 0, 0,
  "System user of the keyholder, the process that holds the TLS private keys and signs for sessions")
S(LOCAL_USER, "local_user", CONFT_STR, "moat-local", 0, 0,
  "System user of the local delivery agent; owns run_directory/maildir")
S(ADMIN_GROUP, "admin_group", CONFT_STR, "moat-admin", 0, 0,
  "Group whose members (and root) may use moatctl")
S(READONLY_GROUP, "readonly_group", CONFT_STR, "", 0, 0,
  "Group whose members may use moatctl's read-only commands (queue, show, stats, shape); empty means none")
