#!/usr/bin/env bash
# Build one board's release artifact from a fresh checkout:
#   boards/build.sh <board>          (a folder of boards/: rpi4, bbb, aarch64-musl, visionfive2)
# Checks/installs the rustup target and the Debian cross linker (apt-get, as root or via
# sudo), builds `cargo build --release` with the board's cargo configuration
# (boards/<board>/board.toml on top of .cargo/config.toml), and packs the stripped binary,
# the sample votecast.toml and the systemd unit into target/boards/<board>.tar.gz.
# Prints the binary's size in bytes. BOARDS_NO_INSTALL=1 only checks, never installs.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "boards/build.sh: $*" >&2; exit 1; }

board="${1:-}"
[[ -n "$board" ]] || die "usage: boards/build.sh <board>   (boards: $(cd boards && ls -d */ | grep -v qemu | tr -d / | tr '\n' ' '))"
dir="boards/$board"
[[ -f "$dir/board.toml" ]] || die "unknown board '$board': no $dir/board.toml"

# The triple and the linker, from the board's cargo fragment (`key = "value"` lines).
toml_value() { sed -n "s/^$1 *= *\"\\(.*\\)\"/\\1/p" "$dir/board.toml" | head -n 1; }
target="$(toml_value target)"
linker="$(toml_value linker)"
[[ -n "$target" && -n "$linker" ]] || die "$dir/board.toml must set build.target and the target's linker"

# Run apt-get as root (directly or through sudo), waiting (bounded) for another apt/dpkg
# process to release its lock instead of failing or racing it.
apt_install() {
    local sudo=()
    [[ "$(id -u)" == 0 ]] || sudo=(sudo)
    local try
    for try in $(seq 1 60); do
        if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=10 \
            install -y --no-install-recommends "$@"; then
            return 0
        fi
        # A missing package list (fresh container): update once, then retry.
        if [[ $try == 1 ]]; then
            "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=60 update -q || true
        fi
        echo "apt-get install $* failed (try $try); retrying in 5 s" >&2
        sleep 5
    done
    return 1
}

# 1. The Debian cross linker and its glibc sysroot. gcc-<triplet> provides <triplet>-gcc;
# the C start files and libc (Scrt1.o, crti.o, libc.so) come from libc6-dev-<arch>-cross,
# which gcc-<triplet> only recommends, so an install without recommends (or a machine
# that has the compiler only) links nothing. Check for the start files, not just the
# compiler.
triplet="${linker%-gcc}"
case "$triplet" in
    aarch64-linux-gnu) debian_arch=arm64 ;;
    arm-linux-gnueabihf) debian_arch=armhf ;;
    riscv64-linux-gnu) debian_arch=riscv64 ;;
    *) die "no Debian cross packages known for linker $linker (add its arch to build.sh)" ;;
esac
cross_packages=("gcc-$triplet" "libc6-dev-$debian_arch-cross")
sysroot_ready() {
    command -v "$linker" >/dev/null 2>&1 &&
        [[ "$("$linker" -print-file-name=Scrt1.o)" == /* ]] &&
        [[ "$("$linker" -print-file-name=crti.o)" == /* ]]
}
if ! sysroot_ready; then
    [[ "${BOARDS_NO_INSTALL:-0}" == 1 ]] && die "linker $linker or its C start files not found (apt packages ${cross_packages[*]})"
    echo "== installing the cross linker and sysroot: ${cross_packages[*]}"
    apt_install "${cross_packages[@]}" || die "could not install ${cross_packages[*]}"
    sysroot_ready || die "$linker still finds no Scrt1.o/crti.o after installing ${cross_packages[*]}"
fi

# 2. The Rust standard library for the target.
if ! rustup target list --installed | grep -qx "$target"; then
    [[ "${BOARDS_NO_INSTALL:-0}" == 1 ]] && die "rustup target $target not installed"
    echo "== installing the rustup target $target"
    rustup target add "$target"
fi

# 3. The release build with the board's settings. RUSTFLAGS from the environment would
# replace the board's rustflags, so it is refused rather than silently mixed in.
[[ -z "${RUSTFLAGS:-}" ]] || die "RUSTFLAGS is set; it would override $dir/board.toml"
echo "== cargo build --release --config $dir/board.toml   ($target)"
cargo build --release --locked --bin votecast --config "$dir/board.toml"

bin="target/$target/release/votecast"
[[ -x "$bin" ]] || die "no binary at $bin"

# 4. Pack binary + config + unit under a versioned top directory.
version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)"
stage="target/boards/stage/votecast-$version-$board"
rm -rf "$stage"
mkdir -p "$stage"
install -m 0755 "$bin" "$stage/votecast"
install -m 0644 "$dir/votecast.toml" "$stage/votecast.toml"
install -m 0644 "$dir/votecast.service" "$stage/votecast.service"
cat > "$stage/BUILD-INFO" <<INFO
board: $board
target: $target
rustflags: $(sed -n 's/^rustflags *= *//p' "$dir/board.toml")
rustc: $(rustc --version)
commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo " (modified)")
INFO
out="target/boards/$board.tar.gz"
# Reproducible archive metadata: fixed owner and order.
tar --sort=name --owner=0 --group=0 --numeric-owner -C "target/boards/stage" \
    -czf "$out" "votecast-$version-$board"
size="$(stat -c %s "$bin")"
echo "== $board: $out   binary $size bytes (stripped, $(file -b "$bin" 2>/dev/null | cut -d, -f1-2 || echo "$target"))"
