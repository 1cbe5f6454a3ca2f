# cli_lib.sh — shared helpers of the end-to-end shell tests (sourced; needs $DDPM and $TMP set):
# fail records a failure; run runs ddpm capturing stdout, stderr and the status; expect checks the status.

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
