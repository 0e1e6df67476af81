#!/bin/bash
# tests/intg/test_report_html.sh: `dirmig report --html FILE` on a journal made by real runs,
# rendered in headless Chromium.
#
# 1. A real program: a slapd source (users of every password scheme, two users that break
#    the target's profile rules, one whose uid is markup) migrated into the Okta contract
#    server: a plan and a run of the "pilot" wave, a full run, and a run stopped with
#    SIGTERM (interrupted); then `dirmig hook` verifies three hook users' passwords (and
#    refuses a wrong one).
# 2. So that the password curve spans several days, the test moves some journal times back
#    by one and two days (the only write into the journal that dirmig did not make).
# 3. `dirmig report --html` writes the page; tests/harness/render_html.py loads it in
#    Chromium: no console error or warning, no request, every section and chart present,
#    no script or event handler; the screenshot and the page are kept under
#    $top_builddir/tests/artifacts/. A broken copy of the page must fail the same check
#    (the checker is not vacuous).
# 4. The page's numbers are the journal's and the run's; the markup uid shows escaped and
#    masked; no password, hash or token in it; the plain text report still works.

. "$(dirname "$0")/lib.sh"

CHROMIUM=${CHROMIUM:-chromium}
command -v "$CHROMIUM" > /dev/null 2>&1 || skip "missing tool: $CHROMIUM (Debian package chromium)"
command -v curl > /dev/null 2>&1 || skip "missing tool: curl"
RENDER=$top_srcdir/tests/harness/render_html.py
ARTIFACTS=$top_builddir/tests/artifacts
mkdir -p "$ARTIFACTS" || fail "cannot create $ARTIFACTS"
MAP=$top_srcdir/schema/maps/inetorgperson-to-okta.json
SUF=dc=src,dc=example

# ---- 1. a source, a target, runs ----
gen_users --suffix "$SUF" --users 42 --groups 4 --big-group 20 --schemes all \
    --ldif "$DATA/src.ldif" --passwords "$SECRETS/gen.pw"
{
    printf '\ndn: uid=xbadmail,ou=people,%s\nobjectClass: inetOrgPerson\nuid: xbadmail\n' "$SUF"
    printf 'cn: X badmail\nsn: Badmail\nmail: not-an-address\n'
    # A uid that is markup: the report must show it as text, masked.
    printf '\ndn: uid=\\<script\\>alert(1)\\</script\\>,ou=people,%s\n' "$SUF"
    printf 'objectClass: inetOrgPerson\n'
    printf 'uid: <script>alert(1)</script>\ncn: X markup\nsn: Markup\nmail: nope\n'
} >> "$DATA/src.ldif"
add_canary "$DATA/src.ldif" "$SUF" "$SECRETS/gen.pw"
printf 'mail: canary@example.org\n' >> "$DATA/src.ldif"
register_ldif_passwords "$DATA/src.ldif"
cut -f2 "$SECRETS/gen.pw" > "$SECRETS/pwlist"
register_secret_file "$SECRETS/pwlist"
start_server SRC "$SUF" "$DATA/src.ldif"
write_secret "$SECRETS/token" "okta-report-token-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
start_okta OKTA
HOOK_PORT=$(free_port)
HOOK_SECRET="Bearer hook-$(head -c 27 /dev/urandom | base64 | tr -d '/+=')"
write_secret "$SECRETS/hook.secret" "$HOOK_SECRET"
printf 'Authorization: %s\n' "$HOOK_SECRET" > "$SECRETS/auth.hdr"

mkconfig "$WORK/r.json" SRC - "target.base=-" "target.bind_dn=-" "target.bind_pw_file=-" \
    "target.type=okta" "target.uri=http://127.0.0.1:$OKTA_PORT" \
    "target.token_file=$SECRETS/token" "map={\"file\": \"$MAP\"}" "run.batch_size=10" \
    'waves=[{"name": "pilot", "filter": "(|(uid=user00001)(uid=user00002)(uid=user00003))"},
            {"name": "later", "filter": "(uid=user0004*)"}]' \
    "hook.listen=127.0.0.1:$HOOK_PORT" "hook.plain_http=true" \
    "hook.secret_file=$SECRETS/hook.secret" 'hook.login_attributes=["uid"]'

dm plan -c "$WORK/r.json" plan --wave pilot
expect_rc 0 plan "plan --wave pilot"
dm pilot -c "$WORK/r.json" --json run --wave pilot
expect_rc 0 pilot "run --wave pilot"
dm full -c "$WORK/r.json" --json run
expect_rc 65 full "full run (two users break the profile rules)"
read -r hook_created created failed < <("$PYTHON3" -c '
import json, sys
p = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
f = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
print(p["created_with_hook"] + f["created_with_hook"],
      p["users"]["created"] + f["users"]["created"], f["users"]["failed"])' \
    "$WORK/pilot.out" "$WORK/full.out") || fail "cannot read the run summaries"
[ "$failed" = 2 ] || fail "the full run failed $failed users, want 2"
log "runs: $created users created, $hook_created of them for the hook, $failed failed"

# A run stopped by SIGTERM: twenty new users in the source and a slow target (60 requests
# a minute), so the run is still going when the signal comes.
for i in $(seq 10 29); do
    printf 'dn: uid=late%s,ou=people,%s\nobjectClass: inetOrgPerson\nuid: late%s\n' "$i" "$SUF" "$i"
    printf 'cn: Late %s\nsn: Late\nmail: late%s@example.org\n\n' "$i" "$i"
done > "$DATA/late.ldif"
ldapadd -x -H "$SRC_URI" -D "cn=admin,$SUF" -y "$SRC_PW_FILE" -f "$DATA/late.ldif" > /dev/null ||
    fail "could not add the late users"
start_okta SLOW --rate-limit 60
mkconfig "$WORK/slow.json" SRC - "target.base=-" "target.bind_dn=-" "target.bind_pw_file=-" \
    "target.type=okta" "target.uri=http://127.0.0.1:$SLOW_PORT" \
    "target.token_file=$SECRETS/token" "map={\"file\": \"$MAP\"}" "run.batch_size=4" \
    "state.path=$WORK/r.db" "log.file=$WORK/slow.log"
# (another target than the journal's: --rebind-state says that is meant)
dm_bg slow -c "$WORK/slow.json" run --no-progress --rebind-state
# The signal once the run is journaled as running (its handler is in place by then).
for i in $(seq 1 300); do
    "$PYTHON3" -c 'import sqlite3, sys
c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
sys.exit(0 if c.execute("SELECT count(*) FROM runs WHERE status = ?", ("running",)).fetchone()[0] else 1)' \
        "$WORK/r.db" 2> /dev/null && break
    kill -0 "$DM_PID" 2> /dev/null || break
    sleep 0.1
done
sleep 0.5
kill -TERM "$DM_PID" 2> /dev/null || fail "the slow run ended before the signal"
dm_wait "$DM_PID" 120
log "the slow run exited $DM_RC after SIGTERM"

# The hook verifies three hook users (CRYPT6, PBKDF2 and ARGON2 hashes) and refuses a wrong
# password.
dm_bg hook -c "$WORK/r.json" hook
HOOK_PID=$DM_PID
for i in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$HOOK_PORT/healthz" && break
    kill -0 "$HOOK_PID" 2> /dev/null || { cat "$WORK/hook.err" >&2; fail "dirmig hook exited"; }
    sleep 0.1
done
verify() { # UID PASSWORD -> prints the answer body
    printf '{"username":"%s","password":"%s"}' "$1" "$2" > "$DATA/verify.json"
    curl -sS --max-time 10 -H "@$SECRETS/auth.hdr" -H 'Content-Type: application/json' \
        --data-binary "@$DATA/verify.json" "http://127.0.0.1:$HOOK_PORT/verify"
}
for u in user00002 user00004 user00005; do
    pw=$(grep -F "uid=$u,ou=people,$SUF" "$SECRETS/gen.pw" | cut -f2)
    [ "$(verify "$u" "$pw")" = '{"verified":true}' ] || fail "the hook did not verify $u"
done
[ "$(verify user00009 "wrong-$RANDOM")" = '{"verified":false}' ] || fail "wrong password verified"
kill -TERM "$HOOK_PID"
dm_wait "$HOOK_PID" 20

# ---- 2. spread the curve over three days ----
"$PYTHON3" - "$WORK/r.db" << 'EOF' || fail "cannot move journal times"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
# The pilot wave's users two days back, the first verification one day back.
con.execute("UPDATE user_creations SET at = at - 2 * 86400 WHERE run = "
            "(SELECT min(id) FROM runs WHERE kind = 'run')")
con.execute("UPDATE runs SET started = started - 2 * 86400, finished = finished - 2 * 86400 "
            "WHERE id = (SELECT min(id) FROM runs WHERE kind = 'run')")
con.execute("UPDATE password_migrations SET at = at - 86400 WHERE id = "
            "(SELECT min(id) FROM password_migrations)")
con.commit()
EOF

# ---- 3. the page, rendered ----
dm report -c "$WORK/r.json" report --html "$WORK/report.html"
expect_rc 0 report "report --html"
[ -s "$WORK/report.html" ] || fail "no page written"
ls "$WORK"/report.html.tmp-* > /dev/null 2>&1 && fail "a temporary file was left behind"
cp "$WORK/report.html" "$ARTIFACTS/report.html"
sections="--section summary --section runs --section outcomes --section problems \
    --section waves --section blocked --section passwords"
charts="--chart runs-chart --chart outcomes-chart --chart passwords-chart"
# shellcheck disable=SC2086
"$PYTHON3" "$RENDER" "$WORK/report.html" $sections $charts \
    --screenshot "$ARTIFACTS/report.png" > "$WORK/render.json" 2> "$WORK/render.err"
rc=$?
[ "$rc" = 77 ] && skip "chromium cannot run here"
[ "$rc" = 0 ] || { cat "$WORK/render.err" >&2; fail "the page does not render cleanly (exit $rc)"; }
"$PYTHON3" - "$WORK/render.json" "$ARTIFACTS/report.png" << 'EOF' || fail "render findings"
import json, struct, sys
r = json.load(open(sys.argv[1]))
d = r["dom"]
assert not r["console"] and not r["exceptions"] and not r["requests"], r
assert d["scripts"] == 0 and not d["handlers"] and not d["external"], d
for c in ("runs-chart", "outcomes-chart", "passwords-chart"):
    assert d["charts"][c]["marks"] > 0, (c, d["charts"][c])
png = open(sys.argv[2], "rb").read(24)
assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", png[16:24])
assert w >= 1000 and h >= 1500, (w, h)  # the whole page, not a blank viewport
print("%dx%d" % (w, h))
EOF
log "rendered in Chromium without console errors; screenshot $ARTIFACTS/report.png"

# The checker catches what it is for: an external image, an inline script, a console error.
sed 's#<main>#<main><img src="http://127.0.0.1:9/x.png"><script>console.error(1)</script>#' \
    "$WORK/report.html" > "$WORK/broken.html"
"$PYTHON3" "$RENDER" "$WORK/broken.html" --section summary > /dev/null 2> "$WORK/broken.err"
[ $? = 1 ] || fail "render_html.py passed a page with an external image and a script"
grep -q "Content Security Policy" "$WORK/broken.err" || fail "the CSP violation was not seen"
"$PYTHON3" "$RENDER" "$WORK/report.html" --section no-such-section > /dev/null 2>&1 &&
    fail "render_html.py passed a page without the section it was asked for"

# ---- 4. what the page says ----
"$PYTHON3" - "$WORK/report.html" "$WORK/r.db" "$hook_created" << 'EOF' || fail "page numbers"
import re, sqlite3, sys
html = open(sys.argv[1], encoding="utf-8").read()
con = sqlite3.connect(sys.argv[2])
hook_created = int(sys.argv[3])
def tile(label):
    m = re.search(r'<div class="v">([0-9,]+)</div><div class="l">%s</div>' % re.escape(label), html)
    assert m, label
    return int(m.group(1).replace(",", ""))
ok = con.execute("SELECT count(*) FROM objects WHERE kind='user' AND status='ok'").fetchone()[0]
imported = con.execute("SELECT count(DISTINCT key) FROM user_creations WHERE signin='import'").fetchone()[0]
assert tile("users migrated") == ok, (tile("users migrated"), ok)
assert tile("users created for the hook") >= hook_created > 0, hook_created
assert tile("users with an imported hash") == imported > 0, imported
assert tile("verified through the hook") == 3
# three days in the curve, the verified column adds up to 3
days = re.findall(r'<tr><td>(\d{4}-\d\d-\d\d)</td><td class="n">[0-9,]+</td><td class="n">[0-9,]+'
                  r'</td><td class="n">([0-9,]+)</td>', html)
assert len(days) == 3, days
assert sum(int(v) for _, v in days) == 3, days
# waves: the pilot ran (1 run, 1 plan), the later wave is configured but not run
assert re.search(r'<tr><td>pilot</td><td class="n">1</td><td class="n">1</td>', html)
assert "Configured, not run yet: later." in html
# the interrupted run is listed with the other unfinished runs
assert re.search(r'<section id="blocked">.*<td class="st-interrupted">interrupted</td>', html, re.S)
# problems: the two constraint failures are open (recorded once per run that reached them),
# with masked examples
m = re.search(r'<tr><td>constraint</td><td class="n">(\d+)</td><td class="n">(\d+)</td>', html)
assert m and m.group(1) == "2" and int(m.group(2)) >= 2, m and m.groups()
assert "uid=x***,ou=people,dc=src,dc=example" in html
assert "uid=***,ou=people,dc=src,dc=example" in html  # the escaped markup uid
assert "xbadmail" not in html and "<script" not in html and "alert(1)" not in html
EOF
dm text -c "$WORK/r.json" report
expect_rc 0 text "plain text report"
grep -q "password migration: .* verified" "$WORK/text.err" || fail "the text report changed"
dm nojournal -c "$WORK/slow.json" report --html "$WORK/none/report.html"
[ "$DM_RC" != 0 ] || fail "a report into a missing directory succeeded"
grep -q "cannot create the report" "$WORK/nojournal.err" || fail "no clear error for a bad path"
check_no_secrets
check_no_secrets "$ARTIFACTS/report.html"
log "page checked: numbers, waves, unfinished runs, masked problems, no secrets"
