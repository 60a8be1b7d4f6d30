# Sourced by the GPU check scripts: `step NAME CMD...` runs CMD, logs it to $out/NAME.log
# and remembers a failure in $status (the script goes on, so one run shows every step).
export PYTHONUNBUFFERED=1
status=0
step() {
    local name=$1
    shift
    echo "== $name ($(date -u +%H:%M:%S))"
    "$@" 2>&1 | tee "$out/$name.log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || { echo "== $name exited $rc"; status=1; }
}
