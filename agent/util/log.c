#include <config.h>
#include "log.h"
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

static enum log_level g_level = LOG_LVL_INFO;
static FILE *g_out;
static int g_json;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread long long t_run;
static __thread char t_dn[512];

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_init(enum log_level level, FILE *out, int json)
{
    g_level = level;
    g_out = out;
    g_json = json;
}

void log_set_level(enum log_level level)
{
    g_level = level;
}

int log_level_parse(const char *s)
{
    for (size_t i = 0; i < DM_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            return (int)i;
        }
    }
    return -1;
}

enum log_level log_get_level(void)
{
    return g_level;
}

void log_set_context(long long run_id, const char *dn)
{
    t_run = run_id;
    if (dn == NULL) {
        t_dn[0] = '\0';
    } else {
        snprintf(t_dn, sizeof(t_dn), "%s", dn);
    }
}

/* Appends s to dst as a JSON string body (without quotes). */
static size_t json_escape(char *dst, size_t cap, size_t pos, const char *s)
{
    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            dst[pos++] = '\\';
            dst[pos++] = (char)c;
        } else if (c < 0x20) {
            pos += (size_t)snprintf(dst + pos, cap - pos, "\\u%04x", c);
        } else {
            dst[pos++] = (char)c;
        }
    }
    dst[pos] = '\0';
    return pos;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    char msg[2048], line[4096];
    va_list ap;
    FILE *out = g_out ? g_out : stderr;
    size_t n;

    if (lvl > g_level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (g_json) {
        char ts[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        n = (size_t)snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\"", ts,
                             level_names[lvl]);
        if (t_run) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"run\":%lld", t_run);
        }
        if (t_dn[0]) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"dn\":\"");
            n = json_escape(line, sizeof(line) - 4, n, t_dn);
            n += (size_t)snprintf(line + n, sizeof(line) - n, "\"");
        }
        n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"msg\":\"");
        n = json_escape(line, sizeof(line) - 4, n, msg);
        snprintf(line + n, sizeof(line) - n, "\"}\n");
    } else {
        n = (size_t)snprintf(line, sizeof(line), "dirmig: %s: ", level_names[lvl]);
        if (t_run) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, "[run %lld] ", t_run);
        }
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%s", msg);
        if (t_dn[0] && n < sizeof(line)) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, " (dn=\"%s\")", t_dn);
        }
        if (n < sizeof(line)) {
            snprintf(line + n, sizeof(line) - n, "\n");
        }
    }
    pthread_mutex_lock(&g_lock);
    fputs(line, out);
    fflush(out);
    pthread_mutex_unlock(&g_lock);
}
