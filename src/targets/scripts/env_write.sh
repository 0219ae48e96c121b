# shellcheck shell=sh
# Replaces one env file atomically (the `ssh_env` target's write).
# Arguments: path, create (0/1), on_change (may be empty).
# Stdin: a first line with the SHA-256 of the file as read (or `none`) and
# the SHA-256 of the new text, then the new text. The second hash guards
# against a sender killed mid-way: an early end of input must not install a
# truncated file. Exit codes name the failure; stdout says `written`.
# POSIX tools only (macOS hosts have no `stat -c`, `readlink -f`): owner and
# mode are read from `ls -ldn`, links followed with plain `readlink`.
p=$1; create=$2; hook=$3
IFS=" " read -r want newsum || { echo "no input" >&2; exit 70; }
if [ -L "$p" ]; then
  n=0
  while [ -L "$p" ]; do
    n=$((n+1))
    if [ "$n" -gt 40 ] || ! l=$(readlink -- "$p"); then
      echo "$p is a symlink that cannot be followed" >&2; exit 71
    fi
    case $l in /*) p=$l ;; *) p=$(dirname -- "$p")/$l ;; esac
  done
  [ -e "$p" ] || { echo "$p is a symlink to a missing file" >&2; exit 71; }
fi
if [ -d "$p" ]; then echo "$p is a directory" >&2; exit 72; fi
# Regular files only: a FIFO would block, a device would be replaced. Through
# a link only when its owner is us, root or the file's owner.
if [ -e "$p" ] && [ ! -f "$p" ]; then echo "$p is not a regular file" >&2; exit 84; fi
# shellcheck disable=SC2012 # as for perm
if [ -L "$1" ] && lo=$(ls -ldn -- "$1" | awk '{print $3}') && [ "$lo" != "$(id -u)" ] \
    && [ "$lo" != 0 ] && [ "$lo" != "$(ls -ldn -- "$p" | awk '{print $3}')" ]; then
  echo "$1 is a symlink owned by uid $lo" >&2; exit 85
fi
sum() { if command -v sha256sum >/dev/null 2>&1; then sha256sum < "$1"; else shasum -a 256 < "$1"; fi | cut -d" " -f1; }
# owner FILE [names]: uid:gid (or user:group names) of FILE.
# shellcheck disable=SC2012 # as for perm
owner() { if [ -n "$2" ]; then ls -ld -- "$1"; else ls -ldn -- "$1"; fi | awk '{print $3 ":" $4}'; }
# perm FILE: FILE's mode as chmod's symbolic form (u=rw,g=r,o=), special bits kept.
# shellcheck disable=SC2012 # ls -l is the POSIX way to read a mode; no name is parsed
perm() {
  ls -ld -- "$1" | awk '{
    m = $1; out = ""
    for (i = 0; i < 3; i++) {
      t = substr(m, 2 + 3 * i, 3); s = ""
      if (substr(t, 1, 1) == "r") s = s "r"
      if (substr(t, 2, 1) == "w") s = s "w"
      x = substr(t, 3, 1)
      if (x == "x") s = s "x"; else if (x == "s") s = s "xs"; else if (x == "S") s = s "s"
      else if (x == "t") s = s "xt"; else if (x == "T") s = s "t"
      out = out (i ? "," : "") substr("ugo", i + 1, 1) "=" s
    }
    print out
  }'
}
d=$(dirname -- "$p")
if [ ! -d "$d" ]; then
  [ "$want" = none ] || { echo "changed since it was read" >&2; exit 75; }
  [ "$create" = 1 ] || { echo "missing" >&2; exit 76; }
  (umask 077; mkdir -p -- "$d") || exit 77
fi
# The writers' lock, from the check below to the rename: flock(1) on the
# folder where the host has it (as secretsync's own env_file writes), else a
# `mkdir` lock holding the owner's pid, taken over when that pid is gone (or
# when it names none after 10 s).
t=; L=
trap 'rm -f -- "$t"; [ -z "$L" ] || rm -rf -- "$L"' EXIT HUP INT TERM
if command -v flock >/dev/null 2>&1 && [ -r "$d" ]; then
  exec 9<"$d"
  flock -x -w 10 9 || { echo "another secretsync is writing beside this file" >&2; exit 86; }
else
  n=0
  until mkdir -- "$d/.secretsync.lock" 2>/dev/null; do
    o=$(cat -- "$d/.secretsync.lock/pid" 2>/dev/null)
    if { [ -n "$o" ] && ! kill -0 "$o" 2>/dev/null; } || { [ -z "$o" ] && [ "$n" -ge 10 ]; }; then
      rm -rf -- "$d/.secretsync.lock"; n=0; continue
    fi
    n=$((n+1))
    [ "$n" -le 10 ] || { echo "another secretsync is writing beside this file" >&2; exit 86; }
    sleep 1
  done
  L=$d/.secretsync.lock
  echo $$ > "$L/pid"
fi
# Temp files of writers that died (killed mid-write): ours, their pid gone.
me=$(id -u)
for o in "$d"/.secretsync.*; do
  if [ ! -f "$o" ] || [ -L "$o" ]; then continue; fi
  op=${o##*/.secretsync.}; op=${op%%.*}
  case $op in ''|*[!0-9]*) continue ;; esac
  [ "$op" != $$ ] || continue
  ! kill -0 "$op" 2>/dev/null || continue
  [ "$(owner "$o" | cut -d: -f1)" = "$me" ] || continue
  rm -f -- "$o"
done
if [ -e "$p" ]; then have=$(sum "$p"); [ -n "$have" ] || exit 73; else have=none; fi
[ "$have" = "$want" ] || { echo "changed since it was read" >&2; exit 75; }
if [ "$have" = none ] && [ "$create" != 1 ]; then echo "missing" >&2; exit 76; fi
t=$(umask 077; mktemp "$d/.secretsync.$$.XXXXXX") || exit 78
cat > "$t" || exit 79
[ "$(sum "$t")" = "$newsum" ] || { echo "the new text arrived incomplete" >&2; exit 83; }
if [ "$have" != none ]; then
  if [ "$(owner "$t")" != "$(owner "$p")" ]; then
    chown "$(owner "$p")" -- "$t" 2>/dev/null || { echo "cannot keep the owner $(owner "$p" names)" >&2; exit 81; }
  fi
  chmod "$(perm "$p")" -- "$t" || exit 80
fi
sync -- "$t" 2>/dev/null || sync
if [ -e "$p" ]; then now=$(sum "$p"); else now=none; fi
[ "$now" = "$want" ] || { echo "changed since it was read" >&2; exit 75; }
mv -f -- "$t" "$p" || exit 82
t=
[ -z "$L" ] || rm -rf -- "$L"; L=
exec 9<&-
trap - EXIT HUP INT TERM
sync -- "$d" 2>/dev/null
echo written
if [ -n "$hook" ]; then
  sh -c "$hook" < /dev/null 1>&2 || { rc=$?; echo "on_change exited with status $rc" >&2; exit 90; }
fi
exit 0
