# shellcheck shell=sh disable=SC2088 # "~/" is matched literally, on purpose
# Reads keychain items for secretsync (the `keychain` target), one command per
# host. Arguments: a random marker, the group width, then (security, keychain,
# service, account) tuples. Each item's lookup runs in a pipeline stage; frames
# between marker lines carry what `security` printed and its exit code.
m=$1 width=$2; shift 2
printf '%s home %s\n' "$m" "$HOME"
# look FIRST I SECURITY KEYCHAIN SERVICE ACCOUNT: item I's lookup; then, unless
# FIRST is 1, the frames of the items before it in its group, from stdin; then
# its own frame.
look() {
  first=$1 i=$2 sec=$3 kc=$4 svc=$5 acct=$6
  case $kc in "~/"*) kc=$HOME/${kc#"~/"} ;; esac
  if [ -n "$kc" ]; then set -- "$kc"; else set --; fi
  out=$("$sec" find-generic-password -a "$acct" -s "$svc" -g "$@" 2>&1 >/dev/null </dev/null)
  rc=$?
  [ "$first" = 1 ] || cat
  printf '%s item %d\n' "$m" "$i"
  [ -z "$out" ] || printf '%s\n' "$out"
  printf '\n%s end %d %d\n' "$m" "$i" "$rc"
}
# chain N I FIRST TUPLES...: the first N tuples as one pipeline, numbered from I.
chain() {
  n=$1 i=$2 first=$3 sec=$4 kc=$5 svc=$6 acct=$7; shift 7
  if [ "$n" -gt 1 ]; then
    look "$first" "$i" "$sec" "$kc" "$svc" "$acct" | chain $((n - 1)) $((i + 1)) 0 "$@"
  else
    look "$first" "$i" "$sec" "$kc" "$svc" "$acct"
  fi
}
base=0
while [ "$#" -ge 4 ]; do
  size=$(($# / 4))
  [ "$size" -le "$width" ] || size=$width
  chain "$size" "$base" 1 "$@"
  base=$((base + size))
  shift $((size * 4))
done
