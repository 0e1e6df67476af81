/*
 * bench/okta_ceiling.c: the baseline of bench/bench_okta.sh. POSTs pre-built user bodies
 * (one JSON object per line of BODIES) to BASE/api/v1/users?activate=true with N transfers in
 * flight on one libcurl multi handle (keep-alive), as fast as the server answers: what a
 * client that does nothing but send can get out of the same contract server.
 *
 *   okta_ceiling BASE_URL TOKEN_FILE BODIES N
 *
 * Prints "created C failed F seconds S" on stdout.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slot {
    CURL *e;
    char *body;
};

static size_t sink(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    char url[512], auth[512], tok[400], *line = NULL;
    size_t cap = 0, nbodies = 0, next = 0;
    char **bodies = NULL;
    long created = 0, failed = 0;
    int n, running = 0;
    FILE *f;
    CURLM *m;
    struct slot *slots;
    struct curl_slist *h = NULL;
    double t0;

    if (argc != 5 || (n = atoi(argv[4])) < 1) {
        fprintf(stderr, "usage: okta_ceiling BASE_URL TOKEN_FILE BODIES N\n");
        return 2;
    }
    f = fopen(argv[2], "r");
    if (f == NULL || fgets(tok, sizeof(tok), f) == NULL) {
        return 2;
    }
    fclose(f);
    tok[strcspn(tok, "\r\n")] = '\0';
    snprintf(auth, sizeof(auth), "Authorization: SSWS %s", tok);
    snprintf(url, sizeof(url), "%s/api/v1/users?activate=true", argv[1]);
    f = fopen(argv[3], "r");
    if (f == NULL) {
        return 2;
    }
    while (getline(&line, &cap, f) > 0) {
        bodies = realloc(bodies, (nbodies + 1) * sizeof(char *));
        line[strcspn(line, "\n")] = '\0';
        bodies[nbodies++] = strdup(line);
    }
    fclose(f);
    free(line);
    curl_global_init(CURL_GLOBAL_ALL);
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Accept: application/json");
    h = curl_slist_append(h, "Expect:");
    m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)n);
    slots = calloc((size_t)n, sizeof(*slots));
    t0 = now();
    for (int i = 0; i < n; i++) {
        slots[i].e = curl_easy_init();
        curl_easy_setopt(slots[i].e, CURLOPT_URL, url);
        curl_easy_setopt(slots[i].e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(slots[i].e, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(slots[i].e, CURLOPT_PRIVATE, &slots[i]);
        if (next < nbodies) {
            curl_easy_setopt(slots[i].e, CURLOPT_POSTFIELDS, bodies[next++]);
            curl_multi_add_handle(m, slots[i].e);
        }
    }
    do {
        CURLMsg *msg;
        int left;
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            long code = 0;
            CURL *e = msg->easy_handle;
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            if (msg->data.result == CURLE_OK && code == 200) {
                created++;
            } else {
                failed++;
            }
            curl_multi_remove_handle(m, e);
            if (next < nbodies) {
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, bodies[next++]);
                curl_multi_add_handle(m, e);
                running++;
            }
        }
        if (running > 0) {
            curl_multi_poll(m, NULL, 0, 100, NULL);
        }
    } while (running > 0);
    printf("created %ld failed %ld seconds %.3f\n", created, failed, now() - t0);
    for (int i = 0; i < n; i++) {
        curl_easy_cleanup(slots[i].e);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    return failed > 0;
}
