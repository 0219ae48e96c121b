#!/usr/bin/env bash
# Installs a pinned secretsync release binary, verified by SHA-256, for the
# composite action (action.yml) and for anyone who wants it on a CI runner.
#
#   SECRETSYNC_VERSION   the release tag, e.g. v0.2.0 (required)
#   SECRETSYNC_SHA256    the expected SHA-256 of this platform's archive; if
#                        empty, the release's SHA256SUMS is used (that only
#                        proves the download is intact, not who made it)
#   SECRETSYNC_BASE_URL  where releases are (default: GitHub releases of
#                        SECRETSYNC_REPOSITORY); file:// works, for tests
#   SECRETSYNC_REPOSITORY owner/name on GitHub
#   SECRETSYNC_TARGET    override the detected Rust target triple
#   INSTALL_DIR          where the binary goes (default: $RUNNER_TEMP/secretsync/bin
#                        or ~/.local/bin)
# Appends INSTALL_DIR to $GITHUB_PATH when Actions provides it.
set -euo pipefail

die() { echo "install secretsync: $*" >&2; exit 1; }

version="${SECRETSYNC_VERSION:-}"
[ -n "$version" ] || die "SECRETSYNC_VERSION is not set (a release tag such as v0.2.0)"
case "$version" in
  *[!A-Za-z0-9._+-]*) die "version \`$version\` has characters a release tag does not have" ;;
esac

target="${SECRETSYNC_TARGET:-}"
if [ -z "$target" ]; then
  case "$(uname -s)/$(uname -m)" in
    Linux/x86_64) target=x86_64-unknown-linux-gnu ;;
    Linux/aarch64 | Linux/arm64) target=aarch64-unknown-linux-gnu ;;
    Darwin/arm64 | Darwin/aarch64) target=aarch64-apple-darwin ;;
    *) die "no release binary for $(uname -s) $(uname -m): build from source (cargo install --locked)" ;;
  esac
fi

if [ -n "${SECRETSYNC_BASE_URL:-}" ]; then
  base="${SECRETSYNC_BASE_URL%/}"
else
  repo="${SECRETSYNC_REPOSITORY:-}"
  [ -n "$repo" ] || die "set SECRETSYNC_REPOSITORY (owner/name) or SECRETSYNC_BASE_URL"
  base="https://github.com/$repo/releases/download"
fi

archive="secretsync-$version-$target.tar.gz"
dir="${INSTALL_DIR:-${RUNNER_TEMP:-$HOME/.local}/secretsync/bin}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fetch() { curl --fail --silent --show-error --location --proto '=https,file' --retry 3 -o "$2" "$1"; }

fetch "$base/$version/$archive" "$work/$archive" || die "cannot download $base/$version/$archive"

sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

expected="${SECRETSYNC_SHA256:-}"
if [ -z "$expected" ]; then
  fetch "$base/$version/SHA256SUMS" "$work/SHA256SUMS" || die "cannot download SHA256SUMS; pass the checksum as SECRETSYNC_SHA256"
  expected="$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1 }' "$work/SHA256SUMS")"
  [ -n "$expected" ] || die "SHA256SUMS of $version lists no $archive"
  echo "install secretsync: no pinned checksum given; using the release's SHA256SUMS" >&2
fi
actual="$(sha256 "$work/$archive")"
[ "$actual" = "$(printf '%s' "$expected" | tr 'A-F' 'a-f')" ] \
  || die "checksum mismatch for $archive: expected $expected, got $actual; nothing was installed"

tar -xzf "$work/$archive" -C "$work" secretsync || die "$archive holds no \`secretsync\`"
mkdir -p "$dir"
install -m 0755 "$work/secretsync" "$dir/secretsync"
if [ -n "${GITHUB_PATH:-}" ]; then
  echo "$dir" >> "$GITHUB_PATH"
fi
echo "installed secretsync $version ($target) in $dir" >&2
