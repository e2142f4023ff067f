#!/usr/bin/env bash
# Board CI, called by .ci/run: on a fresh Debian/Ubuntu machine with only the Rust
# toolchain it
#   1. installs the cross linkers and qemu-user (apt) and the four rustup targets;
#   2. builds every board profile's release artifact (boards/build.sh <board>) and smoke-
#      runs each binary under qemu-user (it parses its sample votecast.toml);
#   3. runs the library and simulator tests for aarch64 and armv7 under qemu-user;
#   4. runs the mixed-architecture cluster test (tests/mixed_arch.rs): x86_64, aarch64 and
#      armv7 nodes in one cluster on lo.
# Every step is bounded by `timeout`; the script stops at the first failure.
# BOARDS_CI_STEPS="install build emulated mixed" (default: all) selects steps.
set -euo pipefail
cd "$(dirname "$0")/.."

BOARDS=(rpi4 bbb aarch64-musl visionfive2)
TARGETS=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf aarch64-unknown-linux-musl riscv64gc-unknown-linux-gnu)
# libc6-dev-*-cross: the glibc sysroots (C start files, libc.so) the cross linkers need;
# gcc-<triplet> only recommends them, and apt runs with --no-install-recommends.
APT_PACKAGES=(gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf gcc-riscv64-linux-gnu
    libc6-dev-arm64-cross libc6-dev-armhf-cross libc6-dev-riscv64-cross qemu-user)
STEPS="${BOARDS_CI_STEPS:-install build emulated mixed}"
started=$SECONDS

step() { [[ " $STEPS " == *" $1 "* ]]; }
stamp() { echo "== [$((SECONDS - started)) s] $*"; }
die() { echo "boards/ci.sh: $*" >&2; exit 1; }

# ------------------------------------------------------------------------------------
if step install; then
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        stamp "apt-get install ${missing[*]}"
        sudo=()
        [[ "$(id -u)" == 0 ]] || sudo=(sudo)
        # DPkg::Lock::Timeout waits for another apt/dpkg process instead of failing.
        "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -q
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
            install -y -q --no-install-recommends "${missing[@]}"
    fi
    stamp "rustup targets"
    rustup target add "${TARGETS[@]}"
fi

# ------------------------------------------------------------------------------------
if step build; then
    # One cargo invocation for all four targets first: cargo then overlaps one target's
    # single-threaded LTO link with the others' compilation, which a sequence of four
    # builds cannot. Same settings as boards/build.sh (each board's fragment only touches
    # its own target), so the per-board commands below find everything fresh and only pack.
    configs=()
    for b in "${BOARDS[@]}"; do configs+=(--config "boards/$b/board.toml"); done
    target_flags=()
    for t in "${TARGETS[@]}"; do target_flags+=(--target "$t"); done
    stamp "cargo build --release for ${TARGETS[*]}"
    timeout 1200 cargo build --release --locked --bin votecast "${target_flags[@]}" "${configs[@]}"
    for b in "${BOARDS[@]}"; do
        stamp "boards/build.sh $b"
        BOARDS_NO_INSTALL=1 timeout 600 boards/build.sh "$b"
    done

    # Smoke run of every artifact on its own ISA (under qemu-user): `check-config` must
    # accept its sample config and warn that the interface, which does not exist here, is
    # missing (run would wait for it). Nothing is sent and no socket is opened.
    smoke="$(mktemp -d)"
    trap 'rm -rf "$smoke"' EXIT
    for b in "${BOARDS[@]}"; do
        case $b in
            rpi4) run=(qemu-aarch64 -L /usr/aarch64-linux-gnu) t=aarch64-unknown-linux-gnu ;;
            bbb) run=(qemu-arm -L /usr/arm-linux-gnueabihf) t=armv7-unknown-linux-gnueabihf ;;
            aarch64-musl) run=(qemu-aarch64) t=aarch64-unknown-linux-musl ;;
            visionfive2) run=(qemu-riscv64 -L /usr/riscv64-linux-gnu) t=riscv64gc-unknown-linux-gnu ;;
            *) die "no qemu runner known for board $b" ;;
        esac
        rc=0
        out="$(timeout 60 "${run[@]}" "target/$t/release/votecast" check-config \
            --config "boards/$b/votecast.toml" --interface vcnosuch0 \
            --data-dir "$smoke/$b-data" --state-file "$smoke/$b-state.json" 2>&1)" || rc=$?
        if [[ $rc != 0 || "$out" != *'--interface "vcnosuch0" does not exist'* ]]; then
            die "smoke run of $b ($t) under ${run[0]}: exit $rc, expected 0 and 'does not exist':
$out"
        fi
        echo "smoke: $b binary runs under ${run[0]} and accepts boards/$b/votecast.toml"
    done
fi

# ------------------------------------------------------------------------------------
if step emulated; then
    # The library's unit tests, the simulator scenarios, the FLE rule tests, the 2,000
    # random fault schedules and the zero-allocation check, cross-compiled and run through
    # the qemu runners of .cargo/config.toml. Profile "emulated" (Cargo.toml): optimised,
    # with debug assertions and overflow checks.
    # The simulator suites are modules of one test binary (tests/sim/); the filter picks
    # those three (a filter applies to every target, hence two runs).
    stamp "cargo test (profile emulated) under qemu-user: aarch64, armv7"
    emulated=(cargo test --locked --profile emulated
        --target aarch64-unknown-linux-gnu --target armv7-unknown-linux-gnueabihf)
    timeout 1500 "${emulated[@]}" --lib --test no_alloc
    timeout 1500 "${emulated[@]}" --test sim -- scenarios:: fle_rules:: randomized::
fi

# ------------------------------------------------------------------------------------
if step mixed; then
    # The release artifacts of rpi4 and bbb, exactly as packed, under qemu-user. The shim
    # (boards/qemu/mcast_compat.c) works around qemu-user 7.2's IPv4 multicast option bugs;
    # it is built for each guest and loaded into the guest only (-E LD_PRELOAD=...).
    a64=target/aarch64-unknown-linux-gnu/release/votecast
    arm=target/armv7-unknown-linux-gnueabihf/release/votecast
    [[ -x $a64 && -x $arm ]] || die "run the build step first: $a64 / $arm missing"
    mkdir -p target/qemu-compat
    for cc in aarch64-linux-gnu arm-linux-gnueabihf; do
        "$cc-gcc" -shared -fPIC -O2 -Wall -Wextra -Werror \
            -o "target/qemu-compat/$cc.so" boards/qemu/mcast_compat.c -ldl
    done
    export VOTECAST_MIXED_AARCH64_BIN="$PWD/$a64"
    export VOTECAST_MIXED_ARMV7_BIN="$PWD/$arm"
    export VOTECAST_MIXED_AARCH64_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_PRELOAD=$PWD/target/qemu-compat/aarch64-linux-gnu.so"
    export VOTECAST_MIXED_ARMV7_RUNNER="qemu-arm -L /usr/arm-linux-gnueabihf -E LD_PRELOAD=$PWD/target/qemu-compat/arm-linux-gnueabihf.so"
    stamp "mixed-architecture cluster: x86_64 + aarch64 (qemu) + armv7 (qemu) on lo"
    mixed_log="$(mktemp)"
    timeout 600 cargo test --locked --test mixed_arch -- --ignored --nocapture 2>&1 | tee "$mixed_log"
    # A renamed or filtered-out test would "pass" with 0 tests: demand that it ran.
    grep -q "test result: ok. 1 passed" "$mixed_log" || die "the mixed-architecture test did not run"
    rm -f "$mixed_log"
fi

stamp "boards/ci.sh: all steps passed ($STEPS)"
