# shellcheck shell=sh
# Runs `security -i` (the program is the only argument; commands on stdin, so
# no value is ever on a command line).
exec "$1" -i
