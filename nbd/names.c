/* Option and command names for logs. */
#include "proto.h"

#include <stddef.h>

static const char *const opt_names[] = {
	[NBD_OPT_EXPORT_NAME] = "EXPORT_NAME",
	[NBD_OPT_ABORT] = "ABORT",
	[NBD_OPT_LIST] = "LIST",
	[NBD_OPT_PEEK_EXPORT] = "PEEK_EXPORT",
	[NBD_OPT_STARTTLS] = "STARTTLS",
	[NBD_OPT_INFO] = "INFO",
	[NBD_OPT_GO] = "GO",
	[NBD_OPT_STRUCTURED_REPLY] = "STRUCTURED_REPLY",
	[NBD_OPT_LIST_META_CONTEXT] = "LIST_META_CONTEXT",
	[NBD_OPT_SET_META_CONTEXT] = "SET_META_CONTEXT",
	[NBD_OPT_EXTENDED_HEADERS] = "EXTENDED_HEADERS",
};

static const char *const cmd_names[] = {
	[NBD_CMD_READ] = "READ",
	[NBD_CMD_WRITE] = "WRITE",
	[NBD_CMD_DISC] = "DISC",
	[NBD_CMD_FLUSH] = "FLUSH",
	[NBD_CMD_TRIM] = "TRIM",
	[NBD_CMD_CACHE] = "CACHE",
	[NBD_CMD_WRITE_ZEROES] = "WRITE_ZEROES",
	[NBD_CMD_BLOCK_STATUS] = "BLOCK_STATUS",
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

const char *nbd_opt_name(uint32_t opt)
{
	if (opt < N_ELEMS(opt_names) && opt_names[opt])
		return opt_names[opt];
	return "?";
}

const char *nbd_cmd_name(uint16_t cmd)
{
	if (cmd < N_ELEMS(cmd_names) && cmd_names[cmd])
		return cmd_names[cmd];
	return "?";
}
