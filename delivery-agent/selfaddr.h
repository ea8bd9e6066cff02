/*
 * selfaddr.h: the addresses and ports moat itself listens on, so that
 * the relay transport never sends mail back to itself (a mail loop).
 *
 * Built once at start-up, before the sandbox, from listen,
 * submission_listen and smtps_listen.  A listener on a wildcard address
 * (0.0.0.0 or [::]) stands for every address of every local interface
 * (SIOCGIFCONF for IPv4, /proc/net/if_inet6 for IPv6: getifaddrs() would
 * need a netlink socket, which moatd's seccomp filter refuses to every
 * child) and for the whole loopback range, 127.0.0.0/8 and ::1,
 * on its port.  A wildcard [::] listener counts for IPv4 too, since it
 * may take IPv4 connections as well.
 */
#ifndef MOAT_SELFADDR_H
#define MOAT_SELFADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct conf;

struct selfaddr_entry {
	int		 family;	/* AF_INET or AF_INET6 */
	uint8_t		 addr[16];	/* IPv4 in the first 4 bytes */
	int		 prefix;	/* 32/128 for one address, 8 for 127/8 */
	uint16_t	 port;
};

struct selfaddr {
	struct selfaddr_entry	*v;
	size_t			 n;
};

/*
 * Add one listening address.  For a wildcard, ifaddrs (nif local
 * interface addresses, any port) are added with the listener's port.
 */
void	selfaddr_add_listener(struct selfaddr *sa, const struct sockaddr *listen,
	    const struct sockaddr_storage *ifaddrs, size_t nif);
/*
 * Fill sa from the configuration's listeners and the interfaces'
 * addresses (before the sandbox).  Returns 0 (err is for future use:
 * an interface that cannot be listed only makes the list shorter).
 */
int	selfaddr_init(struct selfaddr *sa, const struct conf *cfg, char *err,
	    size_t errlen);
/* Is address:port (IPv4-mapped IPv6 counts as IPv4) one of ours? */
int	selfaddr_match(const struct selfaddr *sa, const struct sockaddr *target);
void	selfaddr_free(struct selfaddr *sa);

#endif
