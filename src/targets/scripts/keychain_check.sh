# shellcheck shell=sh disable=SC2088 # "~/" is matched literally, on purpose
# `doctor` for a keychain: its settings, which `security` shows only unlocked.
# Arguments: the security program, the keychain (may be empty).
sec=$1; kc=$2
case $kc in "~/"*) kc=$HOME/${kc#"~/"} ;; esac
if [ -n "$kc" ]; then "$sec" show-keychain-info "$kc"; else "$sec" show-keychain-info; fi
