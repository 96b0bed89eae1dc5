#!/usr/bin/env bash
# Builds the Docker images swarmctl's tests run. There is no image registry on
# our machines, so every image is made here from Debian packages and our own
# test application; see tests/images/README.md.
#
#   bash tests/images/build.sh [--force] [NAME...]   default: busybox testapp postgres redis haproxy
#   bash tests/images/build.sh --all                 also the extra servers (mariadb, nats, ...)
#   bash tests/images/build.sh --list                names, tags, and whether each is built
#
# Cache rule: an image whose tag exists and whose label org.swarmctl.test.recipe
# matches the hash of its recipe (this script's builder function, its files
# under tests/images/NAME/, the testapp sources, its base's recipe) is skipped;
# a cached run takes about a second. --force rebuilds the named images (not
# their bases). Runs of this script on one machine are serialised with flock.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/images
SUITE=bookworm
LABEL=org.swarmctl.test.recipe
DEFAULT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

DEFAULT_IMAGES=(busybox testapp postgres redis haproxy)
EXTRA_IMAGES=(mariadb nats zookeeper nginx prometheus memcached rabbitmq)

# The stacks name these tags. SWARMCTL_IMAGES_PREFIX only serves to try this
# script out without touching the images tests use.
P=${SWARMCTL_IMAGES_PREFIX:-swarmctl-test}
declare -A TAG=(
  [busybox]=$P/busybox:latest
  [testapp]=$P/testapp:latest
  [servers-base]=$P/servers-base:$SUITE
  [postgres]=$P/postgres:15
  [redis]=$P/redis:7
  [haproxy]=$P/haproxy:2.6
  [servers-extra]=$P/servers-extra:$SUITE
  [mariadb]=$P/mariadb:10.11
  [nats]=$P/nats:2.9
  [zookeeper]=$P/zookeeper:3.8
  [nginx]=$P/nginx:1.22
  [prometheus]=$P/prometheus:2
  [memcached]=$P/memcached:1.6
  [rabbitmq]=$P/rabbitmq:3.10
)

# The image each one is built FROM (built first when missing).
declare -A BASE=(
  [testapp]=busybox
  [postgres]=servers-base [redis]=servers-base [haproxy]=servers-base
  [mariadb]=servers-extra [nats]=servers-extra [zookeeper]=servers-extra [nginx]=servers-extra
  [prometheus]=servers-extra [memcached]=servers-extra [rabbitmq]=servers-extra
)

# Debian packages of each root filesystem (Depends only; debootstrap skips Recommends).
SERVERS_BASE_PACKAGES=(postgresql-15 redis-server haproxy)
# ZooKeeper comes as libzookeeper-java on a headless JRE: Debian's zookeeper
# package depends on the full default-jre (X11, Mesa, LLVM: +400 MB).
SERVERS_EXTRA_PACKAGES=(mariadb-server nats-server openjdk-17-jre-headless libzookeeper-java nginx-light
  prometheus memcached rabbitmq-server)

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "${BASH_SOURCE[0]}"
}

# ---------------------------------------------------------------- helpers

WORK=
CONTAINERS=()
cleanup() {
  if ((${#CONTAINERS[@]})); then docker rm -fv "${CONTAINERS[@]}" >/dev/null 2>&1 || true; fi
  [[ -n $WORK && -d $WORK ]] || return 0
  # debootstrap mounts /proc and /sys into its target; never rm -rf through a mount.
  local mounts
  mounts=$(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r)
  for m in $mounts; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

workdir() { # NAME -> a fresh directory under $WORK
  mkdir -p "$WORK/$1" && echo "$WORK/$1"
}

# Runs a noisy command with its output in a log file, shown only if it fails.
run_logged() { # LOGNAME CMD...
  local logfile
  logfile=$(workdir logs)/$1.log
  shift
  if ! "$@" >"$logfile" 2>&1; then
    tail -n 60 "$logfile" >&2
    die "failed: $* (last lines of its output above)"
  fi
}

APT_UPDATED=
need_host_packages() { # PACKAGE... : apt-get install the ones missing on this host
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  require_root "installing ${missing[*]}"
  if [[ -z $APT_UPDATED ]]; then
    log "apt-get update (to install ${missing[*]})"
    run_logged apt-update apt-get update
    APT_UPDATED=1
  fi
  log "apt-get install ${missing[*]}"
  run_logged apt-install env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

require_root() {
  [[ $EUID -eq 0 ]] || die "$1 needs root"
}

# The Debian mirror this host's apt uses (first non-security URI), or $SWARMCTL_DEBIAN_MIRROR.
debian_mirror() {
  if [[ -n ${SWARMCTL_DEBIAN_MIRROR:-} ]]; then echo "$SWARMCTL_DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' | grep -v security | grep '/debian/\?$' | head -n1 || true)
  if [[ -z $uri ]]; then
    uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
      awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' | grep -v security | head -n1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# Prints a field of an image (docker inspect FORMAT); fails if there is no such image.
image_field() { # TAG FORMAT
  local out
  out=$(docker image inspect -f "$2" "$1" 2>/dev/null) || return 1
  printf '%s' "$out"
}

recipe_label() { # TAG -> the image's recipe label; fails if there is no such image
  image_field "$1" "{{index .Config.Labels \"$LABEL\"}}"
}

# Removes the image that TAG pointed at before a rebuild, if nothing uses it any more.
remove_replaced() { # OLD_ID TAG
  local new
  new=$(image_field "$2" '{{.Id}}')
  if [[ -n $1 && $1 != "$new" ]]; then docker image rm "$1" >/dev/null 2>&1 || true; fi
}

# Imports a root filesystem directory as an image. Extra args: docker import --change values.
import_rootfs() { # DIR TAG RECIPE CHANGE...
  local dir=$1 tag=$2 recipe=$3 changes=() c
  shift 3
  for c in "$@" "LABEL $LABEL=$recipe"; do changes+=(--change "$c"); done
  tar -C "$dir" --numeric-owner -c --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' . |
    docker import "${changes[@]}" - "$tag" >/dev/null
}

# Makes TAG from NAME's base image plus the files of OVERLAY, configured by
# tests/images/NAME/image.sh: `docker create` with its CREATE options and CMD,
# `docker cp` of the files (DIRS made, some owned), `docker commit` (which keeps
# the container's config: env, entrypoint, cmd, stop signal, ...; plus VOLUMES). One container, about 2 s, where
# `docker build` commits one per Dockerfile step (~3 s each on fuse-overlayfs).
derive() { # NAME TAG RECIPE OVERLAY
  local name=$1 tag=$2 recipe=$3 overlay=$4 container d path uid gid owned=() excludes=()
  local CREATE=() CMD=() DIRS=() VOLUMES=() changes=()
  # shellcheck source=/dev/null
  source "$HERE/$name/image.sh"
  for d in "${DIRS[@]}"; do # PATH or PATH:UID:GID
    mkdir -p "$overlay${d%%:*}"
    if [[ $d == *:* ]]; then owned+=("$d"); fi
  done
  container=$(docker create --label "$LABEL=$recipe" "${CREATE[@]}" "${TAG[${BASE[$name]}]}" "${CMD[@]}")
  CONTAINERS+=("$container")
  # Files belong to root, whoever runs this script; the DIRS given an owner
  # follow in a second archive (docker cp would not re-own an existing directory).
  excludes=()
  for d in "${owned[@]}"; do excludes+=(--exclude="${d%%:*}"); done
  excludes=("${excludes[@]/#--exclude=\//--exclude=}")
  (cd "$overlay" && find . -mindepth 1 -maxdepth 1 -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 -r tar --numeric-owner --owner=0 --group=0 --anchored "${excludes[@]}" -c) |
    docker cp - "$container:/"
  for d in "${owned[@]}"; do
    IFS=: read -r path uid gid <<<"$d"
    # -a: keep the archive's owner (docker cp makes everything root's otherwise).
    tar -C "$overlay" --numeric-owner --owner="$uid" --group="$gid" -c "${path#/}" |
      docker cp -a - "$container:/"
  done
  # Volumes only now: given to docker create, they would catch the files copied in.
  for d in "${VOLUMES[@]}"; do changes+=(--change "VOLUME $d"); done
  docker commit "${changes[@]}" "$container" "$tag" >/dev/null
  docker rm -v "$container" >/dev/null
}

hash_files() { # PATH... (relative to $ROOT) -> contents, modes and symlinks, stable order
  (
    cd "$ROOT"
    find "$@" -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
    find "$@" \( -type f -o -type l \) -printf '%p %m %l\n' | LC_ALL=C sort
  )
}

# Everything an image is made from; its hash is the cache key.
recipe() { # NAME -> hash
  local name=$1
  {
    echo "$name ${TAG[$name]}"
    case $name in
      servers-base) declare -f build_rootfs_image slim_rootfs; echo "${SERVERS_BASE_PACKAGES[*]}" ;;
      servers-extra) declare -f build_rootfs_image slim_rootfs; echo "${SERVERS_EXTRA_PACKAGES[*]}" ;;
      busybox) declare -f build_busybox ;;
      testapp) declare -f build_testapp derive; hash_files testapp/Cargo.toml testapp/src ;;
      *) declare -f build_server derive ;;
    esac
    if [[ -d $HERE/$name ]]; then hash_files "tests/images/$name"; fi
    if [[ -n ${BASE[$name]:-} ]]; then recipe "${BASE[$name]}"; fi
  } | sha256sum | cut -c1-16
}

# ---------------------------------------------------------------- builders

# busybox: Debian's static busybox plus a symlink per applet, imported from a tar stream.
build_busybox() { # TAG RECIPE
  need_host_packages busybox-static
  local bb=/bin/busybox dir applet
  [[ -x $bb ]] || die "$bb missing although busybox-static is installed"
  ldd "$bb" >/dev/null 2>&1 && die "$bb is dynamically linked; busybox-static is needed"
  dir=$(workdir busybox-rootfs)
  mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,home}
  chmod 1777 "$dir/tmp" "$dir/var/tmp"
  cp "$bb" "$dir/bin/busybox"
  for applet in $("$bb" --list-full); do
    [[ -e $dir/$applet ]] || ln -s /bin/busybox "$dir/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
  import_rootfs "$dir" "$1" "$2" "ENV PATH=$DEFAULT_PATH" 'CMD ["sh"]'
}

# testapp: our release binary, the shared libraries ldd lists (the host is bookworm
# too) and the loader, on top of the busybox image (for /bin/sh).
build_testapp() { # TAG RECIPE
  command -v cargo >/dev/null || die "cargo is needed to build testapp"
  local target=${CARGO_TARGET_DIR:-$ROOT/target}/testapp-image overlay bin lib
  # Its own target dir: never waits on the lock of a workspace build running beside us.
  log "cargo build --release -p swarmctl-testapp"
  run_logged cargo-testapp cargo build --release -p swarmctl-testapp --manifest-path "$ROOT/Cargo.toml" --target-dir "$target"
  bin=$target/release/swarmctl-testapp
  overlay=$(workdir testapp-overlay)
  mkdir -p "$overlay/etc"
  cp "$bin" "$overlay/testapp"
  if command -v strip >/dev/null; then strip "$overlay/testapp"; fi
  for lib in $(ldd "$bin" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }'); do
    install -D -m 0755 "$(readlink -f "$lib")" "$overlay$lib"
  done
  [[ -n $(find "$overlay" -name 'ld-linux*' -o -name 'ld64*') ]] || die "ldd $bin named no dynamic loader"
  # glibc resolves with its built-in files and dns modules (since 2.34).
  printf 'hosts: files dns\n' >"$overlay/etc/nsswitch.conf"
  derive testapp "$1" "$2" "$overlay"
  docker run --rm --network none "$1" help >/dev/null || die "$1 does not run (missing libraries?)"
}

# servers-base / servers-extra: debootstrap --variant=minbase with the server
# packages, slimmed, imported. The slow step (~40 s), hence its own cached image.
build_rootfs_image() { # TAG RECIPE PACKAGE...
  local tag=$1 recipe=$2 dir mirror
  shift 2
  require_root "debootstrap"
  need_host_packages debootstrap
  mirror=$(debian_mirror)
  dir=$(workdir "rootfs-${tag//[\/:]/_}")
  log "debootstrap --variant=minbase $SUITE from $mirror with: $*"
  run_logged "debootstrap-${tag//[\/:]/_}" debootstrap --variant=minbase --components=main \
    --include="$(IFS=,; echo "$*")" "$SUITE" "$dir" "$mirror"
  slim_rootfs "$dir"
  import_rootfs "$dir" "$tag" "$recipe" "ENV PATH=$DEFAULT_PATH" "ENV LANG=C.UTF-8" 'CMD ["bash"]'
}

# Drops what a server image never needs, and the state packages' maintainer
# scripts left behind (e.g. the "main" cluster postgresql-common creates).
slim_rootfs() { # DIR
  local dir=$1
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/cache/debconf/*-old \
    "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/* \
    "$dir"/var/log/*.log "$dir"/var/log/apt/* "$dir"/var/lib/postgresql/*/main "$dir"/etc/postgresql/*/main \
    "$dir"/var/lib/redis/* "$dir"/var/lib/mysql/* "$dir"/var/lib/rabbitmq/mnesia "$dir"/usr/share/i18n \
    "$dir"/usr/share/javascript/moment-timezone/data # 212 MB of time zone sources (Prometheus' UI)
  # PostgreSQL's optional LLVM JIT is 130 MB (libLLVM, libz3); without its
  # llvmjit.so PostgreSQL just does not JIT. Nothing else may need them.
  rm -rf "$dir"/usr/lib/postgresql/*/lib/llvmjit* "$dir"/usr/lib/postgresql/*/lib/bitcode \
    "$dir"/usr/lib/*/libLLVM-*.so* "$dir"/usr/lib/*/libz3.so*
  if grep -rlsF -e libLLVM- -e libz3.so "$dir/usr/bin" "$dir/usr/sbin" "$dir/usr/lib" >&2; then
    die "the files above need libLLVM or libz3, which slim_rootfs removed"
  fi
  # The build host's identity must not leak into the image.
  : >"$dir/etc/hostname"
  rm -f "$dir/etc/resolv.conf" "$dir/etc/machine-id"
}

# A server image on its base: tests/images/NAME/image.sh configures it, its
# docker-entrypoint.sh goes to /usr/local/bin, its rootfs/ (if any) to /.
build_server() { # NAME TAG RECIPE
  local overlay
  [[ -f $HERE/$1/image.sh ]] || die "missing $HERE/$1/image.sh"
  overlay=$(workdir "$1-overlay")
  if [[ -f $HERE/$1/docker-entrypoint.sh ]]; then
    install -D -m 0755 "$HERE/$1/docker-entrypoint.sh" "$overlay/usr/local/bin/docker-entrypoint.sh"
  fi
  if [[ -d $HERE/$1/rootfs ]]; then cp -R "$HERE/$1/rootfs/." "$overlay/"; fi
  derive "$1" "$2" "$3" "$overlay"
}

build() { # NAME -> builds it (and its base) unless cached
  local name=$1 tag=${TAG[$1]} want have old start
  if [[ -n ${BASE[$name]:-} ]]; then build "${BASE[$name]}"; fi
  [[ -n ${BUILT[$name]:-} ]] && return 0
  want=$(recipe "$name")
  have=$(recipe_label "$tag" || true)
  if [[ $have == "$want" && -z ${FORCE[$name]:-} ]]; then
    log "$tag: cached"
    BUILT[$name]=1
    return 0
  fi
  old=$(image_field "$tag" '{{.Id}}' || true)
  if [[ -n $old ]]; then log "$tag: rebuilding (recipe changed or --force)"; else log "$tag: building"; fi
  start=$SECONDS
  case $name in
    busybox) build_busybox "$tag" "$want" ;;
    testapp) build_testapp "$tag" "$want" ;;
    servers-base) build_rootfs_image "$tag" "$want" "${SERVERS_BASE_PACKAGES[@]}" ;;
    servers-extra) build_rootfs_image "$tag" "$want" "${SERVERS_EXTRA_PACKAGES[@]}" ;;
    *) build_server "$name" "$tag" "$want" ;;
  esac
  [[ $(recipe_label "$tag") == "$want" ]] || die "$tag: built, but its recipe label is not $want"
  remove_replaced "$old" "$tag"
  REBUILT=1
  log "$tag: built in $((SECONDS - start)) s"
  BUILT[$name]=1
}

list() {
  local name state have
  for name in servers-base "${DEFAULT_IMAGES[@]}" servers-extra "${EXTRA_IMAGES[@]}"; do
    if ! have=$(recipe_label "${TAG[$name]}"); then
      state=missing
    elif [[ $have == "$(recipe "$name")" ]]; then
      state=built
    else
      state="stale (rebuilt on next build)"
    fi
    printf '%-14s %-36s %s\n' "$name" "${TAG[$name]}" "$state"
  done
}

# ---------------------------------------------------------------- main

declare -A BUILT=() FORCE=()
REBUILT=
NAMES=()
force=
for arg in "$@"; do
  case $arg in
    --all) NAMES+=("${DEFAULT_IMAGES[@]}" "${EXTRA_IMAGES[@]}") ;;
    --list) list; exit 0 ;;
    --force) force=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option $arg (see --help)" ;;
    *) [[ -n ${TAG[$arg]:-} ]] || die "unknown image $arg (see --list)"; NAMES+=("$arg") ;;
  esac
done
((${#NAMES[@]})) || NAMES=("${DEFAULT_IMAGES[@]}")
if [[ -n $force ]]; then for name in "${NAMES[@]}"; do FORCE[$name]=1; done; fi

command -v docker >/dev/null || die "docker CLI not found"
docker version -f '{{.Server.Version}}' >/dev/null 2>&1 || die "cannot reach the Docker engine"

# One builder at a time per machine: parallel test runs must not debootstrap twice.
exec 9>"${TMPDIR:-/tmp}/swarmctl-images.lock"
flock 9
# Scratch space for root filesystems and build contexts (not /tmp: it may be a small tmpfs).
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/swarmctl-images.XXXXXX")

for name in "${NAMES[@]}"; do build "$name"; done
# After a rebuild: remove images of ours that lost their tag to an earlier
# rebuild while a container still used them (if none does any more).
if [[ -n $REBUILT ]]; then
  mapfile -t replaced < <(docker images -q --filter dangling=true --filter "label=$LABEL")
  if ((${#replaced[@]})); then docker image rm "${replaced[@]}" >/dev/null 2>&1 || true; fi
fi
log "done: $(for n in "${NAMES[@]}"; do printf '%s ' "${TAG[$n]}"; done)"
