/*
 * triplexctl dev up's certificates: a cluster CA and one certificate per
 * node (CN and DNS subjectAltName = the node id, CA:FALSE so that a node
 * cannot sign for another), made with the openssl command in DIR/tls.
 * They are valid from a day back (openssl ca -startdate; x509 -req cannot
 * backdate before OpenSSL 3.4): a node whose clock is behind must not see
 * a certificate made a moment ago as not yet valid.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"

/* Run openssl with argv; its chatter goes to DIR/tls/openssl.log. */
static int run_openssl(const char *tls_dir, char *const argv[])
{
	char log[PATH_MAX + 16];
	int r;

	snprintf(log, sizeof log, "%s/openssl.log", tls_dir);
	r = ctl_run(argv, log);
	return r < 0 ? r : r == 0 ? 0 : -EIO;
}

static void tls_path(char *out, size_t len, const char *tls_dir,
		     const char *name, const char *ext)
{
	snprintf(out, len, "%s/%s.%s", tls_dir, name, ext);
}

/* YYYYMMDDHHMMSSZ of now + days. */
static void cert_date(char *out, size_t len, int days)
{
	time_t t = time(NULL) + (time_t)days * 86400;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y%m%d%H%M%SZ", &tm);
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -EIO;
}

/* openssl ca's configuration and database, once per directory. */
static int ca_files(const char *tls_dir)
{
	char cnf[PATH_MAX + 16], db[PATH_MAX + 16], serial[PATH_MAX + 16];
	char issued[PATH_MAX + 16], text[4 * PATH_MAX + 256];

	tls_path(cnf, sizeof cnf, tls_dir, "ca", "cnf");
	tls_path(db, sizeof db, tls_dir, "index", "txt");
	tls_path(serial, sizeof serial, tls_dir, "serial", "txt");
	snprintf(issued, sizeof issued, "%s/issued", tls_dir);
	if (mkdir(issued, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(text, sizeof text,
		 "[ca]\ndefault_ca = dev\n[dev]\ndatabase = %s\n"
		 "new_certs_dir = %s\nserial = %s\ndefault_md = sha256\n"
		 "policy = any\nunique_subject = no\n[any]\n"
		 "commonName = supplied\n", db, issued, serial);
	if (write_file(cnf, text) < 0)
		return -EIO;
	if (access(db, F_OK) < 0 && write_file(db, "") < 0)
		return -EIO;
	if (access(serial, F_OK) < 0 && write_file(serial, "1000\n") < 0)
		return -EIO;
	return 0;
}

/* A key and a CSR NAME.key, NAME.csr with CN=cn. */
static int make_key_csr(const char *tls_dir, const char *name, const char *cn)
{
	char key[PATH_MAX + 16], csr[PATH_MAX + 16], subj[80];
	char *argv[] = { "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
			 "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
			 "-out", csr, "-subj", subj, NULL };

	tls_path(key, sizeof key, tls_dir, name, "key");
	tls_path(csr, sizeof csr, tls_dir, name, "csr");
	snprintf(subj, sizeof subj, "/CN=%s", cn);
	return run_openssl(tls_dir, argv);
}

/* NAME.crt from NAME.csr with the extensions in ext_text, signed by the
 * CA (self-signed when name is "ca"), valid from a day back. */
static int sign(const char *tls_dir, const char *name, const char *ext_text,
		int days)
{
	char cnf[PATH_MAX + 16], csr[PATH_MAX + 16], crt[PATH_MAX + 16];
	char ext[PATH_MAX + 16], ca[PATH_MAX + 16], cakey[PATH_MAX + 16];
	char start[32], end[32];
	bool self = !strcmp(name, "ca");
	char *argv[] = { "openssl", "ca", "-batch", "-notext", "-config", cnf,
			 "-keyfile", cakey, "-in", csr, "-out", crt, "-startdate",
			 start, "-enddate", end, "-extfile", ext,
			 self ? "-selfsign" : "-cert", self ? NULL : ca, NULL };
	int ret;

	tls_path(cnf, sizeof cnf, tls_dir, "ca", "cnf");
	tls_path(csr, sizeof csr, tls_dir, name, "csr");
	tls_path(crt, sizeof crt, tls_dir, name, "crt");
	tls_path(ext, sizeof ext, tls_dir, name, "ext");
	tls_path(ca, sizeof ca, tls_dir, "ca", "crt");
	tls_path(cakey, sizeof cakey, tls_dir, "ca", "key");
	cert_date(start, sizeof start, -1);
	cert_date(end, sizeof end, days);
	ret = write_file(ext, ext_text);
	if (ret == 0)
		ret = run_openssl(tls_dir, argv);
	unlink(csr);
	unlink(ext);
	return ret;
}

static int make_ca(const char *tls_dir)
{
	char key[PATH_MAX + 16], crt[PATH_MAX + 16];

	if (ca_files(tls_dir) < 0)
		return -EIO;
	tls_path(key, sizeof key, tls_dir, "ca", "key");
	tls_path(crt, sizeof crt, tls_dir, "ca", "crt");
	if (access(crt, R_OK) == 0 && access(key, R_OK) == 0)
		return 0;  /* a cluster brought up again keeps its CA */
	if (make_key_csr(tls_dir, "ca", "triplex dev cluster CA") < 0)
		return -EIO;
	return sign(tls_dir, "ca", "basicConstraints=critical,CA:TRUE\n"
		    "keyUsage=critical,keyCertSign,cRLSign\n", 3650);
}

int dev_make_node_cert(const char *tls_dir, const char *id)
{
	char ext[256];

	if (make_ca(tls_dir) < 0 || make_key_csr(tls_dir, id, id) < 0)
		return -EIO;
	snprintf(ext, sizeof ext, "basicConstraints=critical,CA:FALSE\n"
		 "keyUsage=critical,digitalSignature\n"
		 "extendedKeyUsage=serverAuth,clientAuth\n"
		 "subjectAltName=DNS:%s\n", id);
	return sign(tls_dir, id, ext, 365);
}

int dev_make_certs(const char *tls_dir, const char *const *ids, int n)
{
	if (mkdir(tls_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	for (int i = 0; i < n; i++)
		if (dev_make_node_cert(tls_dir, ids[i]) < 0)
			return -EIO;
	return 0;
}
