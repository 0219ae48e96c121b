# shellcheck shell=sh
# `doctor` for an env file: can a temp file be created (and removed) in the
# folder of the file a write would replace? Argument: path. Prints ok,
# missing or `denied WHY`.
p=$1
n=0
while [ -L "$p" ] && [ "$n" -lt 40 ]; do
  n=$((n+1))
  l=$(readlink -- "$p") || break
  case $l in /*) p=$l ;; *) p=$(dirname -- "$p")/$l ;; esac
done
d=$(dirname -- "$p")
[ -d "$d" ] || { echo "missing"; exit 0; }
t=$(mktemp "$d/.secretsync.XXXXXX" 2>&1) || { echo "denied $t"; exit 0; }
rm -f -- "$t"; echo ok
