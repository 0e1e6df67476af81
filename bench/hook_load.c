/*
 * bench/hook_load.c: HTTPS load client for `dirmig hook`: N threads, each with one
 * keep-alive libcurl handle, POST Okta password-import requests (right passwords, a fresh
 * eventId each) for a fixed time and count VERIFIED answers.
 *
 * usage: hook_load URL CA_FILE AUTH_HEADER_FILE USERS_FILE SECONDS CLIENTS...
 * prints: hook CLIENTS ops/s p50_ms p99_ms failed
 */
#include <curl/curl.h>
#include <unistd.h>
#include "bench_common.h"

static const char *g_url, *g_ca;
static unsigned long g_run; /* random per process: eventIds never repeat across runs */
static unsigned long g_seq;
static char g_auth[512];

struct hstate {
    CURL *h;
    struct curl_slist *hdrs;
    char resp[1024];
    size_t rlen;
};

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    struct hstate *s = ud;
    size_t len = sz * n, room = sizeof(s->resp) - 1 - s->rlen;

    memcpy(s->resp + s->rlen, p, len < room ? len : room);
    s->rlen += len < room ? len : room;
    s->resp[s->rlen] = '\0';
    return len;
}

static int verify(void *st, const struct bench_user *u, unsigned long seq)
{
    struct hstate *s = st;
    char body[1024];
    long code = 0;

    snprintf(body, sizeof(body),
             "{\"eventId\":\"bench-%lx-%lx\",\"eventType\":\"com.okta.user.credential.password."
             "import\",\"data\":{\"context\":{\"credential\":{\"username\":\"%s\","
             "\"password\":\"%s\"}},\"action\":{\"credential\":\"UNVERIFIED\"}}}",
             g_run, __atomic_add_fetch(&g_seq, 1, __ATOMIC_RELAXED), u->uid, u->pw);
    s->rlen = 0;
    s->resp[0] = '\0';
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(s->h) != CURLE_OK) {
        return 0;
    }
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
    return code == 200 && strstr(s->resp, "\"VERIFIED\"") != NULL;
}

int main(int argc, char **argv)
{
    FILE *f;
    double secs;

    if (argc < 7) {
        fprintf(stderr, "usage: %s URL CA AUTH_FILE USERS SECONDS CLIENTS...\n", argv[0]);
        return 2;
    }
    g_url = argv[1];
    g_ca = argv[2];
    f = fopen(argv[3], "r");
    if (f == NULL || fgets(g_auth, sizeof(g_auth), f) == NULL) {
        return 2;
    }
    fclose(f);
    g_auth[strcspn(g_auth, "\n")] = '\0';
    bench_load_users(argv[4]);
    secs = atof(argv[5]);
    g_run = (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 16);
    curl_global_init(CURL_GLOBAL_ALL);
    for (int a = 6; a < argc; a++) {
        int n = atoi(argv[a]);
        void **states = calloc((size_t)n, sizeof(*states));
        for (int i = 0; i < n; i++) {
            struct hstate *s = calloc(1, sizeof(*s));
            s->h = curl_easy_init();
            s->hdrs = curl_slist_append(NULL, g_auth);
            s->hdrs = curl_slist_append(s->hdrs, "Content-Type: application/json");
            curl_easy_setopt(s->h, CURLOPT_URL, g_url);
            curl_easy_setopt(s->h, CURLOPT_CAINFO, g_ca);
            curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->hdrs);
            curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_data);
            curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
            curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, 5000L);
            states[i] = s;
        }
        bench_run("hook", n, secs, states, verify);
        for (int i = 0; i < n; i++) {
            struct hstate *s = states[i];
            curl_easy_cleanup(s->h);
            curl_slist_free_all(s->hdrs);
            free(s);
        }
        free(states);
    }
    curl_global_cleanup();
    return 0;
}
