# cli_lib.sh — shared helpers of the end-to-end shell tests (sourced; needs $DDPM and $TMP set):
# fail records a failure; run runs ddpm capturing stdout, stderr and the status; expect checks the status;
# expect_error also checks for exactly one error line naming the problem; contains looks for a text in a file.

fails=0
checks=0

fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}

# run ARGS...: runs ddpm, leaving stdout in $TMP/out, stderr in $TMP/err and the status in $rc.
run() {
    "$DDPM" "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    checks=$((checks + 1))
}

# expect WANT_RC ARGS...
expect() {
    want=$1
    shift
    run "$@"
    [ "$rc" -eq "$want" ] || fail "ddpm $* -> exit $rc (want $want); stderr: $(cat "$TMP/err")"
}

# expect_error WANT_RC TEXT ARGS...: the status and exactly one "ddpm: error: " line containing TEXT.
expect_error() {
    want=$1
    text=$2
    shift 2
    expect "$want" "$@"
    n=$(wc -l <"$TMP/err")
    if [ "$n" -ne 1 ] || ! grep -q '^ddpm: error: ' "$TMP/err"; then
        fail "ddpm $*: stderr is not one 'ddpm: error:' line: $(cat "$TMP/err")"
    elif ! grep -q -F -- "$text" "$TMP/err"; then
        fail "ddpm $*: error line lacks '$text': $(cat "$TMP/err")"
    fi
}

contains() {   # contains FILE TEXT WHAT
    grep -q -F -- "$2" "$1" || fail "$3: '$2' not found in: $(head -c 600 "$1")"
}
