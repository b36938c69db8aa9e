# Debian packages through a private apt state (its own sources list, lists and cache in a work
# folder): no change to the system's apt configuration, no root. Sourced by
# tools/build_kokkos_lammps.sh and tools/check_kokkos_api.sh, which define log() and die().

# The archive URI of the system's Debian entry (deb822 or one-line format; not the security
# archive). The archive serves every suite; no host is ever written into the repository.
debian_archive_uri() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && u && !/-security/ {print u; exit}' \
            /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
          awk '$1=="deb" && !/-security/ {for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}')
  fi
  [ -n "$uri" ] || die "no Debian archive found in /etc/apt (needed for the Debian packages)"
  echo "$uri"
}

# private_apt DIR SUITE TYPE...: a private apt state in DIR for the system's Debian archive,
# suite SUITE, entry types TYPE (deb, deb-src), updated; sets APT_OPTS for apt-get/apt-cache.
private_apt() {
  local dir=$1 suite=$2 uri keyring=/usr/share/keyrings/debian-archive-keyring.gpg type
  shift 2
  [ -f "$keyring" ] || die "$keyring missing (Debian package debian-archive-keyring)"
  uri=$(debian_archive_uri)
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  : >"$dir/sources.list"
  for type in "$@"; do
    echo "$type [signed-by=$keyring] $uri $suite main" >>"$dir/sources.list"
  done
  APT_OPTS=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
            -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o APT::Sandbox::User=
            -o Dir::State::status=/dev/null)
  log "apt-get update (private state) from $uri $suite"
  apt-get -q "${APT_OPTS[@]}" update >&2
}

# fetch_sources DIR PACKAGE=VERSION...: the source packages into DIR. What the builds need are
# the upstream tarballs: a mirror that lacks a .dsc or the Debian diff is tolerated.
fetch_sources() {
  local dir=$1
  shift
  mkdir -p "$dir"
  (cd "$dir" && apt-get -q "${APT_OPTS[@]}" source --download-only "$@" >&2) ||
    log "apt-get source reported a failure; going on if the upstream tarballs are there"
}

# orig_tarball DIR PACKAGE VERSION: the path of the upstream tarball fetched into DIR
orig_tarball() {
  local version=${3#*:} tarball
  tarball=$(ls "$1/$2_${version%-*}".orig.tar.* 2>/dev/null | head -1)
  [ -n "$tarball" ] || die "the $2 $3 source package did not download"
  echo "$tarball"
}
