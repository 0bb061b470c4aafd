/* ingest_zap: the ZeroMQ authentication (ZAP, RFC 27) handler for CURVE
 * producers: a client whose public key is not in the allowed list is
 * refused at the handshake and logged. Bound before the producer socket. */
#ifndef LICMON_INGEST_ZAP_H
#define LICMON_INGEST_ZAP_H
#include "svc.h"

struct ingest_zap;

/* Reads the allowed Z85 public keys (one per line, '#' comments) from
 * path and binds the handler. NULL (logged) on a bad file. */
struct ingest_zap *ingest_zap_new(const char *allowed_keys_path, struct svc *svc);
void ingest_zap_free(struct ingest_zap **z);
/* 1 when the 32-byte key is allowed (pure lookup, for tests). */
int ingest_zap_allowed(const struct ingest_zap *z, const unsigned char key[32]);
/* Parses the key file text into z's list; returns the count or -1. */
int ingest_zap_parse(struct ingest_zap *z, const char *text);
struct ingest_zap *ingest_zap_empty(void);

#endif
