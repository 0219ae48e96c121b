# shellcheck shell=sh
# `doctor` for an env file: can a temp file be created (and removed) in the
# folder of the file a write would replace? Argument: path. Prints ok,
# missing, `denied WHY` or `orphans N` (temp files of writers that died,
# which the next write there removes).
p=$1
n=0
while [ -L "$p" ] && [ "$n" -lt 40 ]; do
  n=$((n+1))
  l=$(readlink -- "$p") || break
  case $l in /*) p=$l ;; *) p=$(dirname -- "$p")/$l ;; esac
done
d=$(dirname -- "$p")
[ -d "$d" ] || { echo "missing"; exit 0; }
t=$(mktemp "$d/.secretsync.$$.XXXXXX" 2>&1) || { echo "denied $t"; exit 0; }
rm -f -- "$t"
me=$(id -u); k=0
for o in "$d"/.secretsync.*; do
  if [ ! -f "$o" ] || [ -L "$o" ]; then continue; fi
  op=${o##*/.secretsync.}; op=${op%%.*}
  case $op in ''|*[!0-9]*) continue ;; esac
  ! kill -0 "$op" 2>/dev/null || continue
  # shellcheck disable=SC2012 # the owner's uid, as env_write.sh reads it
  [ "$(ls -ldn -- "$o" | awk '{print $3}')" = "$me" ] || continue
  k=$((k+1))
done
if [ "$k" -gt 0 ]; then echo "orphans $k"; else echo ok; fi
