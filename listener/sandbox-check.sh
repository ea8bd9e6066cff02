#!/bin/sh
# sandbox-check.sh TOP_SRCDIR: check that the listener's seccomp table
# names every system call that a child's table names.
#
# moatd's filter is inherited by every child and filters stack, so a call
# that a child allows (or refuses softly with an errno) but moatd's table
# does not would kill that child with SIGSYS.  Run by `make check`.
top=${1:-..}
names() {
	grep -o 'SB_[A-Z_]*([a-z0-9_]*' "$1" | sed 's/.*(//' | sort -u
}
status=0
outer=$(names "$top/listener/sandbox.c")
for child in smtpd-session queue-manager delivery-agent keyholder; do
	f="$top/$child/sandbox.c"
	[ -f "$f" ] || continue
	for call in $(names "$f"); do
		if ! printf '%s\n' "$outer" | grep -qx "$call"; then
			echo "listener/sandbox.c lacks $call, which $child/sandbox.c names" >&2
			status=1
		fi
	done
done
[ $status -eq 0 ] && echo "listener/sandbox.c covers every child's table"
exit $status
