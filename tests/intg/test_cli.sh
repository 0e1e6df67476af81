#!/bin/bash
# test_cli.sh: the command line. Every command takes exactly its options (plan and run the
# ones the issue names) and refuses the others naming the commands that take them; usage
# errors are two short lines and exit 64; `dirmig CMD --help` and `dirmig help CMD` show the
# command's options and an example, and every example of every command's help is run here
# against real slapd servers; configuration errors are all reported at once with their
# file:line:col and a "did you mean".
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

# ---- 1. which options each command takes ----
declare -A TAKES=(
    [check]="--offline --json"
    [validate]="--wave --out --progress --no-progress --json"
    [mapping]="--out --json"
    [map]="--explain"
    [plan]="--wave --retry-from --limit --samples --progress --no-progress --verify-target --rebind-state --out --json"
    [run]="--wave --retry-from --limit --progress --no-progress --verify-target --rebind-state --plan --json"
    [status]="--json"
    [hook]=""
    [agent]=""
    [report]="--json"
    [rollback]="--wave --plan --json"
    [state]="--from"
)
ALL="--wave --retry-from --limit --samples --progress --no-progress --out --explain --offline \
--verify-target --rebind-state --plan --from --json"
declare -A ARG=([--wave]=pilot [--retry-from]=x.csv [--limit]=3 [--samples]=2 [--out]=p
    [--explain]=k [--plan]=p.jsonl [--progress]=json [--from]=sqlite)
NOCFG=$WORK/no-such-dir/dirmig.json

# opt_args OPT: the option and its argument, if it takes one
opt_args() {
    if [ -n "${ARG[$1]:-}" ]; then echo "$1 ${ARG[$1]}"; else echo "$1"; fi
}

n=0
for cmd in "${!TAKES[@]}"; do
    base=()
    [ "$cmd" = map ] && base=(--explain k)
    [ "$cmd" = rollback ] && base=(3)
    [ "$cmd" = state ] && base=(migrate old.db)
    for opt in $ALL; do
        args=$(opt_args "$opt")
        # rollback's --plan is a flag (run's takes the plan FILE)
        [ "$cmd" = rollback ] && [ "$opt" = --plan ] && args=--plan
        # shellcheck disable=SC2086
        dm "opt-$cmd$opt" -c "$NOCFG" "$cmd" "${base[@]}" $args
        if [[ " ${TAKES[$cmd]} " == *" $opt "* ]]; then
            # taken: parsing goes on to the configuration, which is not there (78)
            expect_rc 78 "opt-$cmd$opt" "$cmd takes $opt"
        else
            expect_rc 64 "opt-$cmd$opt" "$cmd refuses $opt"
            grep -qF "dirmig $cmd: $opt is not an option of $cmd (" "$WORK/opt-$cmd$opt.err" ||
                fail "$cmd $opt: $(cat "$WORK/opt-$cmd$opt.err")"
            [ "$(wc -l < "$WORK/opt-$cmd$opt.err")" = 2 ] ||
                fail "$cmd $opt: the usage error is not two lines: $(cat "$WORK/opt-$cmd$opt.err")"
            grep -qxF "Try 'dirmig $cmd --help'." "$WORK/opt-$cmd$opt.err" ||
                fail "$cmd $opt: no pointer to --help"
            [ ! -s "$WORK/opt-$cmd$opt.out" ] || fail "$cmd $opt: wrote to stdout"
        fi
        n=$((n + 1))
    done
done
# the error names who takes the option
dm status-wave -c "$NOCFG" status --wave x --limit 3
expect_rc 64 status-wave "status --wave"
grep -qxF "dirmig status: --wave is not an option of status (validate, plan, run and rollback take it)" \
    "$WORK/status-wave.err" || fail "status --wave: $(cat "$WORK/status-wave.err")"
log "ok: $n command/option pairs: taken ones parsed, the others refused with exit 64"

# ---- 2. short usage errors ----
# usage TAG WANT_LINE1 ARGS...: exit 64, exactly two lines, the first is WANT_LINE1
usage() {
    local tag=$1 want=$2
    shift 2
    dm "$tag" "$@"
    expect_rc 64 "$tag" "usage error: $*"
    [ "$(wc -l < "$WORK/$tag.err")" = 2 ] || fail "$tag: not two lines: $(cat "$WORK/$tag.err")"
    [ "$(head -n 1 "$WORK/$tag.err")" = "$want" ] ||
        fail "$tag: got '$(head -n 1 "$WORK/$tag.err")', want '$want'"
    grep -qE "^Try 'dirmig( [a-z]+)? --help'\.$" "$WORK/$tag.err" || fail "$tag: no help pointer"
}
usage none "dirmig: a command is required"
usage unknown-cmd 'dirmig: unknown command "plna" (did you mean plan?)' plna
usage unknown-cmd2 'dirmig: unknown command "frobnicate"' frobnicate
usage unknown-opt "dirmig plan: unknown option --smaples (did you mean --samples?)" plan --smaples 3
usage unknown-opt2 "dirmig run: unknown option --colour" run --colour
usage unknown-short "dirmig status: unknown option -x" status -x
usage missing-arg "dirmig plan: --limit needs an argument" plan --limit
usage bad-limit "dirmig run: --limit: not a positive number: 0" run --limit 0
usage bad-samples "dirmig plan: --samples: must be 0..100: 500" plan --samples 500
usage no-explain "dirmig map: --explain KEY is required" map
usage extra-arg 'dirmig check: unexpected argument "now"' check now
usage no-run "dirmig rollback: RUN is required" rollback --plan
usage two-runs 'dirmig rollback: unexpected argument "4"' rollback 3 --plan 4
# positional arguments: state migrate PATH takes two, as rollback RUN takes one
usage state-none "dirmig state: migrate PATH is required" state --from sqlite
usage state-nopath "dirmig state: PATH is required" state migrate --from sqlite
usage state-extra 'dirmig state: unexpected argument "b.db"' state migrate a.db b.db --from sqlite
usage state-nofrom "dirmig state: --from TYPE is required" state migrate a.db
usage state-opt "dirmig state: --wave is not an option of state (validate, plan, run and rollback take it)" \
    state migrate a.db --from sqlite --wave w
usage max-age-alone "dirmig run: --max-age is only for a saved plan: --plan FILE" run --max-age 1h
usage help-bad 'dirmig: help: no such command: plna' help plna
log "ok: usage errors are two lines and exit 64"

# ---- 3. help per command ----
dm help --help
expect_rc 0 help "dirmig --help"
for cmd in "${!TAKES[@]}"; do
    grep -qE "^  $cmd +[a-z]" "$WORK/help.out" || fail "dirmig --help does not list $cmd"
    dm "help-$cmd" "$cmd" --help
    expect_rc 0 "help-$cmd" "dirmig $cmd --help"
    head -n 1 "$WORK/help-$cmd.out" | grep -qF "usage: dirmig [-c FILE] [-v|-q] $cmd" ||
        fail "$cmd --help: $(head -n 1 "$WORK/help-$cmd.out")"
    grep -qx "example:" "$WORK/help-$cmd.out" || fail "$cmd --help has no example"
    for opt in $ALL; do
        if [[ " ${TAKES[$cmd]} " == *" $opt "* ]]; then
            grep -qE "^  $opt( |$)" "$WORK/help-$cmd.out" || fail "$cmd --help lacks $opt"
        else
            ! grep -qE -- "$opt( |\]|$)" "$WORK/help-$cmd.out" || fail "$cmd --help shows $opt"
        fi
    done
    dm "helpcmd-$cmd" help "$cmd"
    expect_rc 0 "helpcmd-$cmd" "dirmig help $cmd"
    cmp -s "$WORK/help-$cmd.out" "$WORK/helpcmd-$cmd.out" ||
        fail "dirmig help $cmd differs from dirmig $cmd --help"
done
log "ok: help per command"

# ---- 4. every configuration error at once ----
gen_users --suffix dc=example,dc=org --users 20 --groups 4 --big-group 10 --schemes fast \
    --ldif "$DATA/src.ldif"
printf '%s\n' "" "dn: uid=ada,ou=people,dc=example,dc=org" "objectClass: inetOrgPerson" \
    "uid: ada" "cn: Ada Lovelace" "sn: Lovelace" "givenName: Ada" "mail: ada@example.org" \
    "departmentNumber: IT" >> "$DATA/src.ldif"
add_canary "$DATA/src.ldif" dc=example,dc=org
register_ldif_passwords "$DATA/src.ldif"
skeleton_ldif dc=example,dc=com "$DATA/dst.ldif"
start_server SRC dc=example,dc=org "$DATA/src.ldif"
start_server DST dc=example,dc=com "$DATA/dst.ldif"

mkconfig "$WORK/bad.json" SRC DST source.pgae_size=10 'target.starttls="yes"' \
    'map={"file": "maps/no-such-map.json"}' 'waves=[{"name": "w", "fitler": "(a=b)"}]' \
    target.delta=true
dm bad -c "$WORK/bad.json" check
expect_rc 78 bad "check with five configuration errors"
for want in "source.pgae_size: unknown key (did you mean \"page_size\"?)" \
    "target.starttls: must be true or false" \
    "target.delta: does nothing here: only for the source" \
    "waves[0].fitler: unknown key (did you mean \"filter\"?)" \
    "map.file: $WORK/maps/no-such-map.json: No such file or directory"; do
    grep -qE "^dirmig: $WORK/bad\.json:[0-9]+:[0-9]+: " "$WORK/bad.err" ||
        fail "errors without file:line:col: $(cat "$WORK/bad.err")"
    grep -qF "$want" "$WORK/bad.err" || fail "not reported: $want: $(cat "$WORK/bad.err")"
done
[ "$(wc -l < "$WORK/bad.err")" = 5 ] || fail "want 5 lines: $(cat "$WORK/bad.err")"
# an error inside the map file has the map file's position
printf '{\n  "users": {\n    "attributes": { "mail": { "from": "mail", "transforms": ["lowr"] } }\n  }\n}\n' \
    > "$WORK/badmap.json"
mkconfig "$WORK/badmapcfg.json" SRC DST "map={\"file\": \"badmap.json\"}"
dm badmap -c "$WORK/badmapcfg.json" plan
expect_rc 78 badmap "plan with a bad map file"
grep -qF "dirmig: $WORK/badmap.json:3:62: users.attributes.mail.transforms[0]: unknown transform \"lowr\" (did you mean \"lower\"?)" \
    "$WORK/badmap.err" || fail "map error: $(cat "$WORK/badmap.err")"
log "ok: every configuration error at once, each at its place"

# ---- 5. the example of every command's help, run ----
HOOK_PORT=$(free_port)
write_secret "$SECRETS/hook.secret" "Bearer cli-$(head -c 27 /dev/urandom | base64 | tr -d '/+=')"
mkconfig "$WORK/example.json" SRC DST source.users.filter='(objectClass=inetOrgPerson)' \
    'waves=[{"name": "pilot", "filter": "(departmentNumber=IT)"}]' \
    "hook={\"listen\": \"127.0.0.1:$HOOK_PORT\", \"plain_http\": true, \"secret_file\": \"$SECRETS/hook.secret\"}"
cd "$WORK" || fail "cd $WORK"
cp "$WORK/example.json" "$WORK/dirmig.json"
for cmd in check validate mapping map plan run rollback status report hook agent; do
    ex=$(sed -n '/^example:$/{n;p;q}' "$WORK/help-$cmd.out" | sed 's/^ *//')
    case "$ex" in
    "dirmig -c dirmig.json $cmd"*) ;;
    *) fail "$cmd: unexpected example: $ex" ;;
    esac
    read -r -a words <<< "${ex#dirmig }"
    if [ "$cmd" = hook ] || [ "$cmd" = agent ]; then
        dm_bg "ex-$cmd" "${words[@]}"
        for i in $(seq 1 100); do
            curl -sf "http://127.0.0.1:$HOOK_PORT/healthz" > /dev/null 2>&1 && break
            sleep 0.1
        done
        curl -sf "http://127.0.0.1:$HOOK_PORT/healthz" > /dev/null ||
            fail "$cmd example: the hook does not answer /healthz: $(tail -5 "$WORK/ex-$cmd.err")"
        kill -TERM "$DM_PID"
        dm_wait "$DM_PID" 20
        expect_rc 0 "ex-$cmd" "the example of dirmig $cmd --help, stopped by SIGTERM: $ex"
        log "ok: example '$ex' served /healthz and stopped on SIGTERM"
        continue
    fi
    dm "ex-$cmd" "${words[@]}"
    expect_rc 0 "ex-$cmd" "the example of dirmig $cmd --help: $ex"
    log "ok: example '$ex'"
done
# state's example copies a SQLite journal (old.db: the one the examples above wrote) into the
# journal of its configuration (here a new SQLite file; test_state_pg.sh copies into PostgreSQL)
mkdir -p "$WORK/statex" && cp "$WORK/example.db" "$WORK/statex/old.db" || fail "no example.db"
mkconfig "$WORK/statex/dirmig.json" SRC DST "state.path=$WORK/statex/new.db"
mkconfig "$WORK/statex/old.json" SRC DST "state.path=$WORK/statex/old.db"
dm ex-state-old -c "$WORK/statex/old.json" status --json
expect_rc 0 ex-state-old "status of the journal to copy"
ex=$(sed -n '/^example:$/{n;p;q}' "$WORK/help-state.out" | sed 's/^ *//')
[ "$ex" = "dirmig -c dirmig.json state migrate --from sqlite old.db" ] ||
    fail "state: unexpected example: $ex"
read -r -a words <<< "${ex#dirmig }"
cd "$WORK/statex" || fail "cd $WORK/statex"
dm ex-state "${words[@]}"
expect_rc 0 ex-state "the example of dirmig state --help: $ex"
cd "$WORK" || fail "cd $WORK"
grep -q "rows copied" "$WORK/ex-state.out" || fail "state example: $(cat "$WORK/ex-state.out")"
grep -q "not copied: the undo store" "$WORK/ex-state.out" &&
    fail "state example: a SQLite destination keeps the undo store, nothing to say"
dm ex-state-status -c "$WORK/statex/dirmig.json" status --json
expect_rc 0 ex-state-status "status of the copied journal"
"$PYTHON3" - "$WORK/ex-state-old.out" "$WORK/ex-state-status.out" << 'EOF' || fail "the copy reads differently"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for j in (a, b):
    j.pop("journal", None)
# same runs, same counts
if a != b:
    print(json.dumps(a, sort_keys=True)[:800], json.dumps(b, sort_keys=True)[:800], sep="\n", file=sys.stderr)
    sys.exit(1)
EOF
log "ok: example '$ex'"
[ -s "$WORK/quality.csv" ] || fail "validate --out quality wrote no quality.csv"
[ -s "$WORK/correlation.csv" ] || fail "mapping --out correlation wrote no correlation.csv"
grep -q "Ada Lovelace" "$WORK/ex-map.out" "$WORK/ex-map.err" || fail "map --explain did not show ada"

check_no_secrets
exit 0
