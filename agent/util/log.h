/*
 * log.h: the one logging module.
 *
 * Call log_init() once from main(); then log_err/warn/info/debug from anywhere. Lines go
 * to stderr (human form, "dirmig: level: [run N] msg (dn=...)") or, in JSON mode, as JSON
 * Lines; a daemon may direct them to a file. log_set_context() attaches the current run
 * id and entry DN to every following line of this thread. Never pass a password, hash,
 * token or pii value to these functions: there is no redaction pass after the fact.
 * Thread-safe: each line is written with one fwrite under a lock.
 */
#ifndef DM_LOG_H
#define DM_LOG_H

#include <stdio.h>
#include "attrs.h"

enum log_level { LOG_LVL_ERR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Sets the threshold, output stream (borrowed; NULL = stderr) and JSON mode. */
void log_init(enum log_level level, FILE *out, int json);

/* Changes only the threshold (a daemon's config reload). */
void log_set_level(enum log_level level);

/* Parses "error|warn|info|debug"; returns -1 if unknown. */
int log_level_parse(const char *s);

enum log_level log_get_level(void);

/* Context for this thread's following lines: run id (0 = none) and DN (NULL = none).
 * dn is copied. */
void log_set_context(long long run_id, const char *dn);

void log_msg(enum log_level lvl, const char *fmt, ...) DM_PRINTF(2, 3);

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_get_level() >= LOG_LVL_DEBUG) {                                                    \
            log_msg(LOG_LVL_DEBUG, __VA_ARGS__);                                                   \
        }                                                                                          \
    } while (0)

#endif
