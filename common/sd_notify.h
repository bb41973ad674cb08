/* systemd's readiness protocol, without libsystemd: one datagram to the
 * socket named by $NOTIFY_SOCKET (a path, or "@name" for an abstract
 * socket). */
#ifndef TRIPLEX_SD_NOTIFY_H
#define TRIPLEX_SD_NOTIFY_H

/* Send state (e.g. "READY=1") if $NOTIFY_SOCKET is set. Returns 1 if sent,
 * 0 if there is no NOTIFY_SOCKET, -errno on failure. */
int tpx_sd_notify(const char *state);

#endif
