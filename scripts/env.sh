# Sourced by the other scripts: the pinned pnpm first on PATH, and no browser downloads.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$root/scripts/bin:$PATH"
# never let a test tool fetch a browser of its own: the system Chromium is used
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
cd "$root"
