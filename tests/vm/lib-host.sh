# Host-side helpers of the VM rig (sourced by tests/vm/run).
# SPDX-License-Identifier: MIT

# fetch_kernel DIR: downloads (once) the newest linux-image-6.12.*-cloud-amd64
# from Debian's bookworm-backports and unpacks it into DIR; prints DIR.
# The archive URI is the one this machine's own apt sources use for
# bookworm: no host name is written here.  A private apt state directory
# is used, so the system's apt configuration is left as it was.
fetch_kernel() {
  local dir=$1 apt=$1.apt
  if [ -f "$dir/.done" ]; then echo "$dir"; return 0; fi
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/deb"
  local uri="" keyring=/usr/share/keyrings/debian-archive-keyring.gpg f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    # deb822: the URIs of the stanza whose Suites include plain "bookworm"
    uri=$(awk 'BEGIN{RS="";FS="\n"} {
        u=""; s=0
        for (i=1;i<=NF;i++) {
          if ($i ~ /^URIs:/) { split($i,a," "); u=a[2] }
          if ($i ~ /^Suites:/) { n=split($i,b," "); for (j=2;j<=n;j++) if (b[j]=="bookworm") s=1 }
          if ($i ~ /^Types:/ && $i !~ /deb( |$)/) u=""
        }
        if (s && u != "") { print u; exit }
      }' "$f")
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ]; then
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -r "$f" ] || continue
      uri=$(awk '$1=="deb" { for (i=2;i<=NF;i++) if ($i !~ /^\[/ && $i !~ /\]$/) { u=$i; s=$(i+1); break }
                 if (s=="bookworm") { print u; exit } }' "$f")
      [ -n "$uri" ] && break
    done
  fi
  [ -n "$uri" ] || { echo "vm: no bookworm apt source found in /etc/apt" >&2; return 1; }
  echo "deb [signed-by=$keyring] $uri bookworm-backports main" > "$apt/sources.list"
  local o=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/none"
           -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
           -o "Dir::State::status=/var/lib/dpkg/status" -o Debug::NoLocking=1
           -o APT::Sandbox::User=root)
  echo "vm: fetching bookworm-backports package list from the machine's own apt source" >&2
  apt-get "${o[@]}" -qq update >&2 || return 1
  local pkg
  pkg=$(apt-cache "${o[@]}" search --names-only '^linux-image-6\.12\..*-cloud-amd64$' |
        awk '{print $1}' | grep -v -- '-dbg$\|-unsigned$' | sort -V | tail -1)
  [ -n "$pkg" ] || { echo "vm: no linux-image-6.12.*-cloud-amd64 in bookworm-backports" >&2; return 1; }
  echo "vm: downloading $pkg" >&2
  (cd "$apt/deb" && rm -f ./*.deb && apt-get "${o[@]}" -qq download "$pkg" >&2) || return 1
  rm -rf "$dir" && mkdir -p "$dir"
  dpkg-deb -x "$apt"/deb/*.deb "$dir" || return 1
  touch "$dir/.done"
  echo "$dir"
}

# copy_bin ROOT FILE...: copies executables or libraries into ROOT at the same
# path, with every shared library ldd names (and the dynamic loader), except
# those already under $SKIP_ROOT (the base image, when building an add-on).
copy_bin() {
  local root=$1 f l; shift
  for f in "$@"; do
    [ -e "$f" ] || { echo "vm: missing $f" >&2; return 1; }
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f" || return 1
    for l in $(ldd "$f" 2>/dev/null | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}'); do
      [ -e "$root$l" ] && continue
      [ -n "${SKIP_ROOT:-}" ] && [ -e "$SKIP_ROOT$l" ] && continue
      mkdir -p "$root$(dirname "$l")"
      cp -L "$l" "$root$l" || return 1
    done
  done
}

# build_initramfs ROOT OUT KDIR KVER
build_initramfs() {
  local root=$1 out=$2 kdir=$3 kver=$4 m
  rm -rf "$root"
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,etc,opt/trueno/tests,lib/modules,mnt}
  cp /bin/busybox "$root/bin/busybox" || return 1
  printf '127.0.0.1 localhost\n::1 localhost\n' > "$root/etc/hosts"
  printf 'hosts: files\npasswd: files\ngroup: files\n' > "$root/etc/nsswitch.conf"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  # Our programs and nbd-client, with their libraries.  fio and qemu-nbd
  # (90 MiB with their libraries: fio links ceph's) go in an add-on image
  # (build_tools_cpio) for the cases that ask for it with "# vm-tools: yes",
  # so a 256 MiB VM keeps its RAM.
  copy_bin "$root" "$(command -v nbdkit)" "$(command -v nbd-client)" || return 1
  # util-linux's swap tools (busybox swapon has no -p priority); they come
  # before busybox on the VM's PATH.
  copy_bin "$root" "$(command -v swapon)" "$(command -v swapoff)" "$(command -v mkswap)" || return 1
  # trueno-swap's locks (busybox may have no flock applet).
  copy_bin "$root" "$(command -v flock)" || return 1
  # Of nbdkit's own plugins only file (the reconnect case's store, which
  # outlives the server) is needed: ours is loaded by path.  trueno-swap
  # puts the limit filter in front of the plugin.
  mkdir -p "$root/usr/lib/x86_64-linux-gnu/nbdkit"
  copy_bin "$root" "$(nbdkit --dump-config | sed -n 's/^filterdir=//p')/nbdkit-limit-filter.so" \
    "$(nbdkit --dump-config | sed -n 's/^plugindir=//p')/nbdkit-file-plugin.so" || return 1
  copy_bin "$root" "$top/.libs/nbdkit-trueno-plugin.so" || return 1
  cp "$top/.libs/nbdkit-trueno-plugin.so" "$root/opt/trueno/trueno.so"
  cp "$top/tests/vm/stress" "$root/opt/trueno/stress" || return 1
  copy_bin "$root" "$top/tests/vm/stress" || return 1
  cp "$top/tests/vm/watchdog" "$root/opt/trueno/watchdog" || return 1
  cp "$top/scripts/trueno-swap" "$root/sbin/trueno-swap" || return 1
  # trueno-ublk (and liburing) at /sbin, where trueno-swap finds it.
  copy_bin "$root" "$top/trueno-ublk" || return 1
  mv "$root$top/trueno-ublk" "$root/sbin/trueno-ublk" || return 1
  cp "$top/trueno-nbd" "$root/sbin/trueno-nbd" || return 1
  # trueno-swap keeps each store in a trueno-hold.
  copy_bin "$root" "$top/trueno-hold" || return 1
  mv "$root$top/trueno-hold" "$root/sbin/trueno-hold" || return 1
  cp "$vmsrc/init" "$root/init" && chmod +x "$root/init"
  cp "$vmsrc"/lib-vm.sh "$root/opt/trueno/" || return 1
  cp -r "$vmsrc/cases" "$vmsrc/transports" "$vmsrc/bench" "$root/opt/trueno/tests/" 2>/dev/null
  # Throwaway certificates for the TLS case (the guest has no openssl).
  "$top/tests/make-pki" "$root/opt/trueno/tls" || return 1
  # A sample of the corpus for the cases and the swap stress program:
  # 1536 pages (6 MiB) shared out over its files, each share from the
  # middle of its file (a bigger corpus would take RAM from a 256 MiB VM;
  # the bench boot adds all of it).
  mkdir -p "$root/opt/trueno/corpus"
  local cf files=("$corpus"/*.pages) per n
  per=$((1536 / ${#files[@]}))
  for cf in "${files[@]}"; do
    n=$(($(stat -c %s "$cf") / 4096))
    dd if="$cf" of="$root/opt/trueno/corpus/${cf##*/}" bs=4096 count=$per \
       skip=$((n > per ? (n - per) / 2 : 0)) status=none || return 1
  done
  # Modules, decompressed (busybox insmod does not read .ko.xz).
  local mdir=$kdir/lib/modules/$kver/kernel
  for m in drivers/block/nbd mm/zsmalloc lib/lz4/lz4_compress lib/lz4/lz4hc_compress \
           drivers/block/zram/zram drivers/block/ublk_drv drivers/block/brd; do
    [ -f "$mdir/$m.ko.xz" ] || { echo "vm: module $m.ko.xz missing" >&2; return 1; }
    xz -dc "$mdir/$m.ko.xz" > "$root/lib/modules/$(basename "$m").ko" || return 1
  done
  (cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$out"
}

# build_tools_cpio ROOT OUT BASE_ROOT: fio and qemu-nbd with the libraries
# the base image lacks, and trueno-ublk built with each sanitizer (with its
# runtime, ~3 MiB each) at /opt/trueno/{tsan,asan}, as an archive to append
# to the base initramfs.
build_tools_cpio() {
  local root=$1 out=$2 base=$3 san
  rm -rf "$root"; mkdir -p "$root"
  SKIP_ROOT=$base copy_bin "$root" "$(command -v fio)" "$(command -v qemu-nbd)" \
    "$top/tests/tsan/trueno-ublk" "$top/tests/asan/trueno-ublk" || return 1
  for san in tsan asan; do
    mkdir -p "$root/opt/trueno/$san"
    mv "$root$top/tests/$san/trueno-ublk" "$root/opt/trueno/$san/trueno-ublk" || return 1
  done
  (cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$out"
}

# build_corpus_cpio ROOT OUT CORPUS: the corpus files under /opt/trueno/corpus,
# as a cpio archive to append to the initramfs (the kernel unpacks both).
build_corpus_cpio() {
  local root=$1 out=$2 c=$3 f
  rm -rf "$root"; mkdir -p "$root/opt/trueno/corpus-full"
  for f in "$c"/*.pages; do
    cp "$f" "$root/opt/trueno/corpus-full/" || return 1
  done
  (cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$out"
}
