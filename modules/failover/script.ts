/**
 * The failover test as one POSIX sh script, run as root on the initiator (see modules/failover.ts for what it
 * measures and why). Every value in it went through the `sh` quoter.
 *
 * The script is a set of functions, one per phase, and a main part that calls them in order. Each phase keeps
 * its state in files of the run directory (times, write log, pids), so phases can run in separate processes: the
 * tests run `prepare write stop` on a plain temp file, damage a block, then run `verify report`. Leaving out the
 * phases that cut the link and read multipathd (precheck, monitor, cut, settle) is an option of this builder
 * only; the module's params cannot ask for it.
 *
 * Files of the run directory (/run/sanbook-failover/<escaped mount>):
 *   times        "name ns" lines: start, cut, up, settled, stopped (date +%s%N); with no interface, "cut" is the
 *                first poll that saw a path not active and there is no "up"
 *   flags        settle-timeout, no-fault, writer-killed, monitor-killed
 *   writes       "seq block start_ns end_ns exit" per write; the last line has 3 fields if the writer was
 *                killed during that write
 *   paths        "ns active total" every second from before the cut until the writer stops (monitor)
 *   maps-before.json, maps-after.json   multipathd show maps json before the cut and at the last settle poll
 *   verify       "seq block ok" or "seq block lost FOUND" for the latest write of each block that exited 0
 * The report phase gathers them into the result file (see result.ts) and decides pass or fail.
 */
import { Command, raw, sh } from '../../lib/command.ts';

export type Phase = 'prepare' | 'precheck' | 'monitor' | 'write' | 'cut' | 'settle' | 'stop' | 'verify' | 'report';

/** Every phase, in order: what the module runs. */
export const ALL_PHASES: readonly Phase[] = ['prepare', 'precheck', 'monitor', 'write', 'cut', 'settle', 'stop', 'verify', 'report'];

/** The phases that need no link, no multipathd and no mount: what a test can run on a plain directory. */
export const LOCAL_PHASES: readonly Phase[] = ['prepare', 'write', 'stop', 'verify', 'report'];

export const RUN_ROOT = '/run/sanbook-failover';
export const RESULT_DIR = '/var/lib/sanbook/failover';
/** The data file never grows past this: blocks are written in sequence and wrap around. */
export const MAX_DATA_BYTES = 16 * 1024 * 1024;
export const MAX_BLOCKS = 4096;
/** Writes go on this long after every path is active again. */
export const TAIL_SECONDS = 2;
/** How long a write in flight may take to finish once the writer is told to stop, before it is killed. */
export const STOP_GRACE_SECONDS = 60;

/** What the script needs from the module's params (already validated, defaults applied). */
export interface ScriptParams {
  readonly mount: string;
  /** '' = cut nothing: wait for a fault made elsewhere. */
  readonly interface: string;
  readonly file: string;
  readonly downSeconds: number;
  readonly leadSeconds: number;
  readonly settleTimeoutSeconds: number;
  readonly writeIntervalMs: number;
  readonly blockBytes: number;
  readonly requirePass: boolean;
}

/** Internal options (tests): where the files go and which phases run. */
export interface ScriptOptions {
  readonly runDir?: string;
  readonly resultFile?: string;
  readonly phases?: readonly Phase[];
  readonly tailSeconds?: number;
}

const PHASE_CALL: Readonly<Record<Phase, string>> = {
  prepare: 'prepare',
  precheck: 'precheck',
  monitor: 'start_monitor',
  write: 'start_writing',
  cut: 'cut_link',
  settle: 'settle_paths',
  stop: 'stop_writing',
  verify: 'verify_blocks',
  report: 'report',
};

export function blocksFor(blockBytes: number): number {
  return Math.max(1, Math.min(MAX_BLOCKS, Math.floor(MAX_DATA_BYTES / blockBytes)));
}

/** sleep(1) argument for a pause in ms ('' = no pause). */
export function pauseArg(ms: number): string {
  return ms <= 0 ? '' : (ms / 1000).toFixed(3);
}

/** Seconds the script may take at most (its command timeout): every phase's bound plus a margin. */
export function scriptBoundSeconds(p: ScriptParams): number {
  const verify = Math.ceil(blocksFor(p.blockBytes) / 20); // a few forks per block read back
  return p.leadSeconds + p.downSeconds + p.settleTimeoutSeconds + TAIL_SECONDS + STOP_GRACE_SECONDS + 5 + verify + 60;
}

// The functions. Literal text only: no value is interpolated here (they read the variables set above them).
const FUNCTIONS = sh`now() { date +%s%N; }
die() { printf 'failover: %s\\n' "$*" >&2; exit 1; }
stamp() { printf '%s %s\\n' "$1" "$(now)" >> "$run/times"; }
flag() { printf '%s\\n' "$1" >> "$run/flags"; }
block() { printf "$fmt" "sanbook-failover block $1"; }
count_paths() { awk '/"dev_t"/ { p = 1 } p && /"dm_st"/ { t++; if ($0 ~ /"active"/) a++; p = 0 } END { printf "%d %d\\n", a, t }'; }
link_up() {
  n=0
  until ip link set dev "$iface" up; do n=$((n + 1)); [ "$n" -ge 5 ] && return 1; sleep 1; done
  linkdown=0
}
cleanup() {
  rc=$?
  trap - EXIT HUP INT TERM
  if [ "$linkdown" = 1 ]; then link_up || { printf 'failover: could not bring %s back up\\n' "$iface" >&2; rc=1; }; fi
  for w in writer monitor; do
    if [ -f "$run/$w.pid" ]; then kill "$(cat "$run/$w.pid")" 2>/dev/null; rm -f -- "$run/$w.pid"; fi
  done
  exit "$rc"
}
prepare() {
  [ -n "$run" ] || die 'no run directory'
  rm -rf -- "$run" && mkdir -p -- "$run" "$(dirname -- "$result")" || die "cannot create $run"
  : > "$run/times"; : > "$run/flags"; : > "$run/writes"; : > "$run/verify"; : > "$run/dd.err"
  if [ -e "$data" ] || [ -L "$data" ]; then
    [ -f "$data" ] && [ ! -L "$data" ] || die "$data exists and is not a file this test left: choose another file name"
    if [ -s "$data" ] && [ "$(dd if="$data" bs=23 count=1 status=none 2>/dev/null)" != 'sanbook-failover block ' ]; then
      die "$data exists and is not a file this test left: choose another file name"
    fi
  fi
  stamp start
}
precheck() {
  findmnt -n -- "$mount" > /dev/null || die "nothing is mounted at $mount"
  if [ -n "$iface" ]; then ip -o link show dev "$iface" | grep -q '[<,]UP[,>]' || die "$iface is down: bring it up before the test"; fi
  multipathd show maps json > "$run/maps-before.json" || die 'multipathd show maps json failed'
  set -- $(count_paths < "$run/maps-before.json")
  [ "$2" -gt 0 ] || die 'multipathd shows no path'
  [ "$1" -eq "$2" ] || die "only $1 of $2 multipath paths are active before the cut: cutting $iface could leave a map without a path"
  printf '%s\\n' "$2" > "$run/total-before"
}
monitor() {
  trap - EXIT HUP INT TERM
  while [ ! -e "$run/stop-monitor" ]; do
    printf '%s %s\\n' "$(now)" "$(multipathd show maps json 2>/dev/null | count_paths)" >> "$run/paths"
    sleep 1
  done
}
start_monitor() { monitor > /dev/null 2>&1 & printf '%s\\n' "$!" > "$run/monitor.pid"; }
writer() {
  trap - EXIT HUP INT TERM
  seq=0
  while [ ! -e "$run/stop" ]; do
    seq=$((seq + 1))
    pos=$(((seq - 1) % nblocks))
    printf '%s %s %s ' "$seq" "$pos" "$(now)" >> "$run/writes"
    block "$seq" | dd of="$data" bs="$bs" count=1 seek="$pos" oflag=direct,dsync conv=notrunc iflag=fullblock status=none 2>> "$run/dd.err"
    rc=$?
    printf '%s %s\\n' "$(now)" "$rc" >> "$run/writes"
    if [ -n "$pause" ]; then sleep "$pause"; fi
  done
}
start_writing() {
  writer > /dev/null 2>> "$run/writer.err" &
  printf '%s\\n' "$!" > "$run/writer.pid"
  sleep "$lead"
}
await_fault() {
  total=$(cat "$run/total-before")
  deadline=$(($(now) + down * 1000000000))
  while :; do
    set -- $(multipathd show maps json 2>/dev/null | count_paths)
    if [ "$2" -gt 0 ] && [ "$1" -lt "$total" ]; then stamp cut; return 0; fi
    if [ "$(now)" -ge "$deadline" ]; then flag no-fault; return 0; fi
    sleep 1
  done
}
cut_link() {
  if [ -z "$iface" ]; then await_fault; return; fi
  linkdown=1
  stamp cut
  ip link set dev "$iface" down || die "ip link set dev $iface down failed"
  sleep "$down"
  link_up || die "ip link set dev $iface up failed 5 times"
  stamp up
}
settle_paths() {
  total=$(cat "$run/total-before")
  deadline=$(($(now) + settle * 1000000000))
  while :; do
    multipathd show maps json > "$run/maps-after.json" 2>/dev/null
    set -- $(count_paths < "$run/maps-after.json")
    if [ "$1" -eq "$2" ] && [ "$2" -ge "$total" ]; then stamp settled; return 0; fi
    if [ "$(now)" -ge "$deadline" ]; then flag settle-timeout; return 0; fi
    sleep 1
  done
}
stop_pid() {
  [ -f "$run/$1.pid" ] || return 0
  pid=$(cat "$run/$1.pid"); n=0
  while kill -0 "$pid" 2>/dev/null && [ "$n" -lt "$2" ]; do sleep 0.1; n=$((n + 1)); done
  if kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null; flag "$1-killed"; fi
  wait "$pid" 2>/dev/null
  rm -f -- "$run/$1.pid"
}
stop_writing() {
  sleep "$tail"
  : > "$run/stop"
  stop_pid writer "$((grace * 10))"
  stamp stopped
  : > "$run/stop-monitor"
  stop_pid monitor 50
}
verify_blocks() {
  awk 'NF >= 3 { last[$2] = $1; rc[$2] = (NF == 5 ? $5 : "x") } END { for (p in last) if (rc[p] == "0") print p, last[p] }' "$run/writes" > "$run/tocheck"
  while read -r pos seq; do
    got=$(dd if="$data" bs="$bs" count=1 skip="$pos" iflag=direct status=none 2>/dev/null)
    if [ "$got" = "$(block "$seq")" ]; then
      printf '%s %s ok\\n' "$seq" "$pos"
    else
      printf '%s %s lost %s\\n' "$seq" "$pos" "$(printf '%.40s' "$got" | tr -c ' -~' '?')"
    fi
  done < "$run/tocheck" > "$run/verify"
}
section() { printf '@@failover %s\\n' "$1"; if [ -f "$2" ]; then awk 1 "$2"; fi; }
report() {
  set -- $(awk 'NF == 3 { u++ } NF == 5 { if ($5 == 0) c++; else f++; d = ($4 - $3) / 1000000; if (d > w) w = d } END { printf "%d %d %d %d %d\\n", NR, c, f, u, w }' "$run/writes")
  n=$1 c=$2 f=$3 u=$4 w=$5
  lost=$(awk '$3 == "lost" { l++ } END { print l + 0 }' "$run/verify")
  recov=$(awk '$1 == "cut" { c = $2 } $1 == "up" { u = $2 } $1 == "settled" { s = $2 } END { if (u == "") u = c; if (u == "") print "-"; else if (s == "") print "timeout"; else printf "%d\\n", (s - u) / 1000000 }' "$run/times")
  if [ -n "$iface" ]; then since='the link came back'; within='the link coming back'; else since='the first failed path was seen'; within='the first failed path'; fi
  case $recov in
    -) if grep -qx no-fault "$run/flags"; then paths="no path failed within $down s (nothing was cut here: the fault did not come)"; else paths='no link cut'; fi ;;
    timeout) paths="paths not all active within $settle s of $within" ;;
    *) paths="every path active $recov ms after $since" ;;
  esac
  ok=1
  if [ "$f" -ne 0 ] || [ "$u" -ne 0 ] || [ "$lost" -ne 0 ] || [ "$c" -eq 0 ] || [ "$recov" = timeout ] || grep -qx no-fault "$run/flags"; then ok=0; fi
  line="$n writes of $bs bytes, $c completed, $f failed, $u unfinished, $lost lost; longest write $w ms; $paths"
  if [ "$ok" = 1 ]; then verdict="passed: $line"; else verdict="FAILED: $line"; fi
  tmp="$result.tmp"
  {
    printf '@@failover v1\\n@@failover params\\n'
    printf 'mount %s\\ninterface %s\\nfile %s\\nblockBytes %s\\nblocks %s\\n' "$mount" "$iface" "$data" "$bs" "$nblocks"
    printf 'leadSeconds %s\\ndownSeconds %s\\nsettleTimeoutSeconds %s\\n' "$lead" "$down" "$settle"
    section times "$run/times"; section flags "$run/flags"; section paths "$run/paths"
    section maps-before "$run/maps-before.json"; section maps-after "$run/maps-after.json"
    section writes "$run/writes"; section verify "$run/verify"
    printf '@@failover dd-errors\\n'; sort "$run/dd.err" | uniq -c | sort -rn | head -n 5
    printf '@@failover verdict\\n%s\\n@@failover end\\n' "$verdict"
  } > "$tmp" && mv -f -- "$tmp" "$result" || die "cannot write $result"
  if [ -f "$data" ]; then rm -f -- "$data"; fi
  if [ "$ok" = 1 ]; then printf 'failover %s\\n' "$verdict"; return 0; fi
  printf 'failover %s (details: %s)\\n' "$verdict" "$result" >&2
  if [ "$require" = 1 ]; then exit 1; fi
}`;

/** The whole script: variables (quoted), functions, traps, then the phases in order. */
export function failoverScript(p: ScriptParams, paths: { runDir: string; resultFile: string }, options: ScriptOptions = {}): Command {
  const phases = options.phases ?? ALL_PHASES;
  const calls = ALL_PHASES.filter((ph) => phases.includes(ph)).map((ph) => PHASE_CALL[ph]);
  const data = `${p.mount.replace(/\/+$/, '')}/${p.file}`;
  return sh`mount=${p.mount}; iface=${p.interface}; data=${data}
bs=${p.blockBytes}; nblocks=${blocksFor(p.blockBytes)}; pause=${pauseArg(p.writeIntervalMs)}
lead=${p.leadSeconds}; down=${p.downSeconds}; settle=${p.settleTimeoutSeconds}; tail=${options.tailSeconds ?? TAIL_SECONDS}; grace=${STOP_GRACE_SECONDS}
run=${options.runDir ?? paths.runDir}; result=${options.resultFile ?? paths.resultFile}; require=${p.requirePass ? 1 : 0}
fmt="%-$((bs - 1))s\\n"; linkdown=0
${FUNCTIONS}
trap cleanup EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM
${raw(calls.join('\n'))}
`;
}

/** The same script with a display that says what it does in one line (the script itself is ~150 lines). */
export function failoverCommand(p: ScriptParams, paths: { runDir: string; resultFile: string }, options: ScriptOptions = {}): Command {
  const script = failoverScript(p, paths, options);
  const fault =
    p.interface === ''
      ? `cut nothing, wait at most ${p.downSeconds} s for a path to fail`
      : `ip link set dev ${p.interface} down; ${p.downSeconds} s later up`;
  const shown =
    `failover script: write ${p.blockBytes}-byte blocks to ${p.mount}/${p.file} (O_DIRECT, dsync); after ${p.leadSeconds} s ` +
    `${fault}; wait at most ${p.settleTimeoutSeconds} s for every path to be active; read every block back; result in ${paths.resultFile}`;
  return new Command(script.script, shown, { timeoutMs: scriptBoundSeconds(p) * 1000 });
}
