#!/bin/bash
# studio-bootstrap lifecycle script, rendered from templates/on_start.sh.j2.
# Do not edit: change the config and render again.
#
# At each app start it makes the configured CodeCommit repositories of another
# AWS account present and current in $HOME.
#
# Foreground, well under a second:
#   1. merges the managed profiles into ~/.aws/config between marker lines;
#   2. writes Git credential settings to ~/.studio-bootstrap/gitconfig and
#      includes that file once, last, from ~/.gitconfig;
#   3. adds one line to ~/.bashrc that sources the terminal hook;
#   4. starts the background sync, which clones or fast-forwards each
#      repository under a lock, with retries and a deadline.
# Inputs: HOME, and the container credentials variables
# (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI).
# CODE_COMMIT_ENDPOINT, when set, replaces the CodeCommit Git host, including
# the Git endpoints of the config.
# Log: standard output, and ~/.studio-bootstrap/sync.log for the sync.
#
# errexit stays off on purpose: a failing lifecycle script stops the app from
# starting, so every step checks its own commands, logs what failed, and the
# script exits 0 unless strict mode is on.
set -u -o pipefail

SB_VERSION='0.1.0'
SB_APP_TYPE='KernelGateway'
SB_STRICT='false'
# One entry per repository, in config order.
SB_NAMES=( 'example-repo')
SB_REGIONS=( 'eu-west-1')
SB_PROFILES=( 'repo-account')
SB_PATHS=( 'example-repo')
SB_BRANCHES=( '')
SB_TRANSPORTS=( 'codecommit')
SB_FALLBACKS=( 'true')
# The managed ~/.aws/config block, and the Git credential sections for the
# default hosts and for a host given by CODE_COMMIT_ENDPOINT.
SB_AWS_BLOCK='[profile repo-account]
region = eu-west-1
role_arn = arn:aws:iam::111111111111:role/CrossAccountRepoRole
credential_source = EcsContainer
role_session_name = studio-bootstrap
sts_regional_endpoints = regional'
# shellcheck disable=SC2016 # git, not bash, expands $1 and $@ in the helper
SB_GIT_BLOCK='[credential "https://git-codecommit.eu-west-1.amazonaws.com"]
	helper =
	helper = "!f() { test \"$1\" = get || exit 0; aws codecommit credential-helper --profile repo-account \"$@\"; }; f"
	UseHttpPath = true'
# shellcheck disable=SC2016 # git, not bash, expands $1 and $@ in the helper
SB_GIT_ENDPOINT_BLOCK='[credential "https://@ENDPOINT@"]
	helper =
	helper = "!f() { test \"$1\" = get || exit 0; aws codecommit credential-helper --profile repo-account get --ignore-host-check; }; f"
	UseHttpPath = true'
SB_BEGIN='# >>> studio-bootstrap managed block: do not edit >>>'
SB_END='# <<< studio-bootstrap managed block <<<'
# Sync limits, in seconds: the whole run, one clone, one fetch, one install.
SB_DEADLINE=900
SB_CLONE_TIMEOUT=600
SB_FETCH_TIMEOUT=120
SB_INSTALL_TIMEOUT=300
SB_ATTEMPTS=3
# --- shared helpers -------------------------------------------------------------

# Prints one log line stamped with UTC time. The foreground also appends it
# to the sync log, so that the user reads the whole story in one file.
sb_log() {
  local now line
  TZ=UTC0 printf -v now '%(%Y-%m-%dT%H:%M:%SZ)T' -1
  line="$now studio-bootstrap: $*"
  printf '%s\n' "$line"
  if [[ -n ${SB_LOGFILE:-} ]]; then
    printf '%s\n' "$line" 2>/dev/null >>"$SB_LOGFILE"
  fi
  return 0
}

# Runs one named step; a failure is logged and returned, never fatal.
sb_step() {
  local name=$1 rc
  shift
  "$@"
  rc=$?
  if ((rc != 0)); then
    sb_log "step failed: $name (exit $rc)"
  fi
  return "$rc"
}

# Prints the file a path finally points to, so that writes keep a symlink
# into a dotfiles repository intact.
sb_resolve() {
  local path=$1
  if [[ -L $path ]]; then
    path=$(readlink -f -- "$path") || return 1
  fi
  printf '%s\n' "$path"
}

# Prints 1 when the file exists, is not empty and lacks a final newline.
sb_no_final_newline() {
  [[ -s $1 && -n $(tail -c 1 -- "$1") ]] && echo 1
  return 0
}

sb_first_line() {
  local line=''
  [[ -r $1 ]] && IFS= read -r line <"$1"
  printf '%s\n' "$line"
}

sb_head() {
  printf '%s\n' "${1%%$'\n'*}"
}

# Succeeds when a file lacks the owner's write bit. Root can write it anyway,
# but the missing bit means the owner wants it left alone.
sb_read_only() {
  local mode
  [[ -w $1 ]] || return 0
  mode=$(stat -L -c %a -- "$1") || return 1
  (((8#$mode & 8#200) == 0))
}

# Replaces a file by rename from a temporary file in the same folder.
sb_install_file() {
  local new=$1 target=$2 mode=$3
  if [[ -e $target ]] && cmp -s -- "$new" "$target"; then
    rm -f -- "$new"
    return 0
  fi
  if [[ -e $target ]]; then
    chmod --reference="$target" -- "$new" 2>/dev/null || chmod "$mode" -- "$new"
  else
    chmod "$mode" -- "$new"
  fi
  if ! mv -f -- "$new" "$target"; then
    rm -f -- "$new"
    return 1
  fi
}

# Writes text to a file atomically. A file that has the text already keeps
# its inode, and only its mode is set.
sb_write() {
  local target=$1 mode=$2 text=$3 new
  new="$target.tmp.$$"
  if ! printf '%s\n' "$text" >"$new"; then
    rm -f -- "$new"
    return 1
  fi
  if cmp -s -- "$new" "$target" && chmod "$mode" -- "$target"; then
    rm -f -- "$new"
    return 0
  fi
  if ! chmod "$mode" -- "$new" || ! mv -f -- "$new" "$target"; then
    rm -f -- "$new"
    return 1
  fi
}

# Saves a copy of a file before it is changed in a way that drops user lines.
sb_backup() {
  local stamp
  TZ=UTC0 printf -v stamp '%(%Y%m%dT%H%M%SZ)T' -1
  SB_BACKUP="$1.studio-bootstrap-backup.$stamp"
  cp -p -- "$1" "$SB_BACKUP"
}

# Gives files that root wrote back to the owner of the home. Studio Classic
# runs KernelGateway apps as root on the same EFS home as the JupyterServer
# app of uid 1000, which must still be able to read and change them.
sb_give_back() {
  local owner
  ((EUID == 0)) || return 0
  owner=$(stat -c %u:%g -- "$HOME") || return 0
  [[ $owner != 0:* ]] || return 0
  chown -R -h --from=0:0 "$owner" -- "$@" 2>/dev/null
  return 0
}

# Prints a bash program made of this script's data, its functions and a call.
sb_program() {
  local functions=()
  mapfile -t functions < <(compgen -A function sb_)
  printf '#!/bin/bash\n'
  printf '# Written by studio-bootstrap at each app start.\n'
  printf 'set -u -o pipefail\n'
  declare -p SB_VERSION SB_APP_TYPE SB_NAMES SB_REGIONS SB_PROFILES SB_PATHS \
    SB_BRANCHES SB_TRANSPORTS SB_FALLBACKS SB_DEADLINE SB_CLONE_TIMEOUT \
    SB_FETCH_TIMEOUT SB_INSTALL_TIMEOUT SB_ATTEMPTS
  declare -f "${functions[@]}"
  # shellcheck disable=SC2016 # expanded when the program runs, not now
  printf 'SB_DIR="$HOME/.studio-bootstrap"\n%s "$@"\n' "$1"
}

# Starts the sync in a session of its own, detached from the caller. SIGHUP
# is ignored from the first instruction on, because a terminal that closes
# right away would otherwise end the child before setsid has run.
sb_spawn() {
  local dir=$1 launcher=(nohup)
  if command -v setsid >/dev/null; then
    launcher=(setsid nohup)
  fi
  (
    trap '' HUP
    "${launcher[@]}" bash "$dir/sync.sh" </dev/null >>"$dir/sync.log" 2>&1 &
  )
}

# The ~/.aws/config merge. It reads the file as botocore's configparser does
# (sections, options, continuation lines, '#' and ';' comments) and exits 3
# with "line N: problem" on what configparser rejects. It prints the file
# with the managed block (ENVIRON SB_BLOCK) where the old block was, else
# where the first taken-over section was, else at the end. Every other line
# is printed as it was read. A section is taken over when ENVIRON SB_MANAGED
# lists its header as TYPE/NAME ("profile/x", "services/y"), and each one is
# reported on stderr.
# shellcheck disable=SC2016 # awk code, not shell
SB_AWK_INI='
function trim(s) { sub(/^[ \t\r\f\v]+/, "", s); sub(/[ \t\r\f\v]+$/, "", s); return s }
function fail(msg) { printf "line %d: %s\n", NR, msg > "/dev/stderr"; bad = 1; exit 3 }
function keep(l) { if (taking) pending[++npending] = l; else out[++nout] = l }
function flush(  i) { for (i = 1; i <= npending; i++) out[++nout] = pending[i]; npending = 0 }
function key_of(h,  n, p) {
  n = split(h, p, /[ \t]+/)
  return n == 2 ? p[1] "/" p[2] : ""
}
BEGIN {
  n = split(ENVIRON["SB_MANAGED"], names, " ")
  for (i = 1; i <= n; i++) managed[names[i]] = 1
}
{
  line = $0; plain = line; sub(/\r$/, "", plain)
  if (NR == 1 && line ~ /\r$/) cr = "\r"
  if (plain == begin) {
    if (seen) fail("managed block begins twice")
    inblock = 1; seen = 1; markpos = nout; next
  }
  if (plain == end) { if (!inblock) fail("managed block ends without a beginning"); inblock = 0; next }
  if (inblock) next
  v = trim(plain)
  if (v == "" || v ~ /^[#;]/) { keep(line); next }
  indent = match(plain, /[^ \t]/) - 1
  if (section != "" && option != "" && indent > optindent) { if (!taking) out[++nout] = line; next }
  optindent = indent
  if (match(v, /^\[.+\]/)) {
    header = substr(v, 2, RLENGTH - 2)
    if (header in sections) fail("duplicate section [" header "], first at line " sections[header])
    sections[header] = NR; section = header; option = ""
    flush(); taking = 0
    if (key_of(header) in managed) {
      taking = 1
      if (!took) takepos = nout
      took = 1
      printf "[%s] from line %d\n", header, NR > "/dev/stderr"
      next
    }
    out[++nout] = line; next
  }
  if (section == "") fail("option before any section header")
  if (!match(v, /[=:]/)) fail("not a section header, option or comment")
  option = tolower(trim(substr(v, 1, RSTART - 1)))
  if (option == "") fail("option without a name")
  if ((section SUBSEP option) in options) fail("duplicate option " option " in [" section "]")
  options[section SUBSEP option] = 1
  if (taking) { npending = 0; next }
  out[++nout] = line
}
END {
  if (bad) exit 3
  if (inblock) { NR = NR + 1; fail("managed block does not end") }
  flush()
  pos = seen ? markpos : (took ? takepos : nout)
  for (i = 0; i <= nout; i++) {
    if (i > 0) printf "%s%s", out[i], (i == nout && ENVIRON["SB_NONL"] != "" && pos != nout ? "" : "\n")
    if (i == pos) {
      printf "%s%s\n", begin, cr
      m = split(ENVIRON["SB_BLOCK"], block, "\n")
      for (j = 1; j <= m; j++) printf "%s%s\n", block[j], cr
      printf "%s%s\n", end, cr
    }
  }
}'

# Removes the managed block from a file and appends it again at the end, so
# that it comes after every line the user has. The block text is ENVIRON SB_BLOCK.
# shellcheck disable=SC2016 # awk code, not shell
SB_AWK_APPEND='
{
  plain = $0; sub(/\r$/, "", plain)
  if (plain == begin) { inblock = 1; next }
  if (plain == end) { inblock = 0; next }
  if (!inblock) out[++nout] = $0
}
END {
  for (i = 1; i <= nout; i++) print out[i]
  print begin; print ENVIRON["SB_BLOCK"]; print end
}'

# --- background sync ----------------------------------------------------------

sb_sync_main() {
  local i
  SB_DEADLINE_AT=$((SECONDS + SB_DEADLINE))
  SB_HELD=''
  PATH="$SB_DIR/bin:$PATH"
  export GIT_TERMINAL_PROMPT=0
  sb_trust_clones
  mkdir -p "$SB_DIR/status" "$SB_DIR/locks" || return 1
  sb_rotate_log
  sb_log "sync started (pid $$, ${#SB_NAMES[@]} repositories)"
  trap 'sb_unlock' EXIT
  trap 'exit 143' TERM INT HUP
  if [[ -z ${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:-}${AWS_CONTAINER_CREDENTIALS_FULL_URI:-} ]]; then
    sb_log "neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor" \
      "AWS_CONTAINER_CREDENTIALS_FULL_URI is set: repositories not synced"
    return 0
  fi
  for i in "${!SB_NAMES[@]}"; do
    sb_sync_repo "$i"
  done
  sb_log "sync finished"
}

# Lets root run git in clones owned by the home's user: git refuses a
# repository owned by someone else unless safe.directory names it, and only
# command-line scope (which GIT_CONFIG_COUNT is) may set it.
sb_trust_clones() {
  local i
  ((EUID == 0)) || return 0
  export GIT_CONFIG_COUNT=${#SB_PATHS[@]}
  for i in "${!SB_PATHS[@]}"; do
    export "GIT_CONFIG_KEY_$i=safe.directory" "GIT_CONFIG_VALUE_$i=$HOME/${SB_PATHS[$i]}"
  done
}

# Keeps the sync log under 1 MiB, with one older generation.
sb_rotate_log() {
  local log="$SB_DIR/sync.log" size
  size=$(wc -c <"$log" 2>/dev/null) || return 0
  if ((size > 1048576)); then
    mv -f -- "$log" "$log.1"
  fi
  return 0
}

# Syncs one repository under its lock and records the outcome.
sb_sync_repo() {
  local i=$1 id=${SB_PROFILES[$1]} dest="$HOME/${SB_PATHS[$1]}" url outcome rc
  if ! sb_lock "$id"; then
    sb_log "$id: skipped: $SB_LOCK_HOLDER is syncing it"
    return 0
  fi
  sb_status "$id" running "sync started"
  url=$(sb_url "$i")
  if [[ ! -e $dest && ! -L $dest ]]; then
    sb_clone "$i" "$dest" "$url"
  elif sb_is_ours "$i" "$dest"; then
    sb_update "$i" "$dest"
  else
    SB_OUTCOME="$dest exists and is not a clone of ${SB_NAMES[$i]}; left untouched"
    false
  fi
  rc=$?
  outcome=$SB_OUTCOME
  if ((rc == 0)); then
    sb_status "$id" ok "$outcome"
    sb_summary "${SB_NAMES[$i]}: $outcome"
  else
    sb_status "$id" failed "$outcome"
    sb_summary "${SB_NAMES[$i]}: failed: $outcome"
  fi
  sb_give_back "$dest" "$HOME/.aws" "$SB_DIR"
  sb_unlock
}

# Logs a summary line, and copies it to the app's container log when that
# file is writable (Studio images send it to CloudWatch).
sb_summary() {
  local container_log=/var/log/apps/app_container.log
  sb_log "$1"
  if [[ -w $container_log ]]; then
    sb_log "$1" >>"$container_log"
  fi
  return 0
}

sb_status() {
  local now
  TZ=UTC0 printf -v now '%(%Y-%m-%dT%H:%M:%SZ)T' -1
  sb_write "$SB_DIR/status/$1" 644 "state=$2"$'\n'"time=$now"$'\n'"message=$3"
}

# Prints the CodeCommit Git host that replaces the public one of a region:
# CODE_COMMIT_ENDPOINT when set, else the region's endpoint in the config.
# Fails when the region uses the public host.
sb_endpoint() {
  local host=${CODE_COMMIT_ENDPOINT:-}
  if [[ $host =~ ^[A-Za-z0-9.-]+(:[0-9]{1,5})?$ ]]; then
    printf '%s\n' "$host"
    return
  fi
  return 1
}

# Prints the host name of CodeCommit's Git endpoint for a region.
sb_host() {
  sb_endpoint "$1" || printf 'git-codecommit.%s.amazonaws.com\n' "$1"
}

sb_url() {
  local i=$1
  if [[ ${SB_TRANSPORTS[$i]} == https ]]; then
    printf 'https://%s/v1/repos/%s\n' "$(sb_host "${SB_REGIONS[$i]}")" "${SB_NAMES[$i]}"
  else
    printf 'codecommit::%s://%s@%s\n' "${SB_REGIONS[$i]}" "${SB_PROFILES[$i]}" "${SB_NAMES[$i]}"
  fi
}

# Succeeds when the folder is a clone of this repository through either
# transport: its origin names the repository (and the profile, for codecommit).
sb_is_ours() {
  local i=$1 dest=$2 origin
  [[ -d $dest/.git || -f $dest/.git ]] || return 1
  origin=$(git -C "$dest" config --get remote.origin.url 2>/dev/null) || return 1
  case $origin in
    "codecommit::${SB_REGIONS[$i]}://${SB_PROFILES[$i]}@${SB_NAMES[$i]}") return 0 ;;
    "codecommit://${SB_PROFILES[$i]}@${SB_NAMES[$i]}") return 0 ;;
    https://*/v1/repos/"${SB_NAMES[$i]}") return 0 ;;
    *) return 1 ;;
  esac
}

# Runs a networked git command bounded in time, with the credential helper
# for HTTPS given on the command line so that it works even when ~/.gitconfig
# could not be changed. Sets SB_ERROR to git's first "fatal:" or "error:"
# line, which names the cause, else to its last line, redacted. The output
# stays in memory because a full disk may not take one more file.
# git 2.39 has no setting for curl's connect timeout, so an endpoint that
# accepts TCP but never completes TLS keeps an attempt waiting for curl's default of
# 300 seconds or the attempt's timeout, whichever ends first.
sb_git() {
  local i=$1 err rc helper=() check='' host verb=$3
  [[ $verb == -C ]] && verb=$5
  host=$(sb_host "${SB_REGIONS[$i]}")
  sb_limit "$2" "${SB_NAMES[$i]}: git $verb" || return 1
  sb_log "${SB_NAMES[$i]}: git $verb from $host, timeout ${SB_LIMIT}s"
  shift 2
  # git-remote-codecommit signs the URL itself, and a helper would only cost
  # an AWS CLI start for "store" after each success, so codecommit gets none.
  if [[ ${SB_TRANSPORTS[$i]} == https ]]; then
    case $host in
      *.amazonaws.com | *.amazonaws.com:* | *.amazonaws.com.cn) ;;
      *) check=' --ignore-host-check' ;;
    esac
    helper=(-c "credential.helper=!f() { test \"\$1\" = get || exit 0; aws codecommit credential-helper --profile ${SB_PROFILES[$i]} get$check; }; f"
      -c credential.UseHttpPath=true)
  fi
  err=$(timeout -k 10 "$SB_LIMIT" git -c credential.helper= "${helper[@]}" \
    -c http.lowSpeedLimit=1000 -c http.lowSpeedTime=60 "$@" 2>&1 >/dev/null)
  rc=$?
  err=$(printf '%s\n' "$err" | sb_redact)
  SB_ERROR=$(printf '%s\n' "$err" | grep -E -m 1 '^(fatal|error): ')
  [[ -n $SB_ERROR ]] || SB_ERROR=$(printf '%s\n' "$err" | grep -v '^$' | tail -n 1)
  if ((rc == 124 || rc == 137)); then
    SB_ERROR="timed out after ${SB_LIMIT}s waiting for $host"
  fi
  [[ -n $SB_ERROR ]] || SB_ERROR="git exited with $rc"
  return "$rc"
}

# Removes credentials, tokens and signatures from text before it is logged.
sb_redact() {
  sed -E 's#(https?://)[^/@[:space:]]+@#\1***@#g
s/(A[SK]IA|ASCA|AROA)[A-Z0-9]{12,}/\1****/g
s/([0-9]{8}T[0-9]{6}Z)?[0-9a-f]{64}/****/g
s#([Tt]oken|[Ss]ignature|[Pp]assword)[=:][^[:space:]&]+#\1=****#g'
}

# Runs a command again with backoff while it fails, within the attempts and
# the deadline of the whole sync.
sb_retry() {
  local label=$1 attempt=1 delay=2 rc
  shift
  while true; do
    "$@"
    rc=$?
    if ((rc == 0)); then
      return 0
    fi
    if ((attempt >= SB_ATTEMPTS || SECONDS + delay >= SB_DEADLINE_AT)); then
      return "$rc"
    fi
    sb_log "$label: attempt $attempt failed ($SB_ERROR); retrying in ${delay}s"
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2))
  done
}

# Makes a command available, installing its package once into
# ~/.studio-bootstrap/lib when it is not on PATH. git-remote-codecommit comes
# from the configured sources, tried in order, and the AWS CLI from the same
# sources except s3, which carries only git-remote-codecommit.
sb_ensure_tool() {
  local command=$1 package=$2 module=$3 lib="$SB_DIR/lib/$2" new source sources=(pypi) pin='' deps=()
  command -v "$command" >/dev/null && return 0
  if ! command -v python3 >/dev/null; then
    SB_ERROR="$command not found and python3 is missing, so $package cannot be installed"
    return 1
  fi
  if ! python3 -m pip --version >/dev/null 2>&1; then
    SB_ERROR="$command not found and python3 has no pip, so $package cannot be installed"
    return 1
  fi
  if [[ $package == git-remote-codecommit ]]; then
    # git-remote-codecommit needs only botocore, which Studio images have.
    python3 -c 'import botocore' 2>/dev/null && deps=(--no-deps)
  fi
  new="$lib.new.$$"
  mkdir -p -- "$SB_DIR/lib" || { SB_ERROR="cannot create $SB_DIR/lib"; return 1; }
  sb_clean_lib
  for source in "${sources[@]}"; do
    rm -rf -- "$new"
    if "sb_pip_$source" "$package" "$pin" "$new" "${deps[@]}"; then
      sb_log "installed $package from $source"
      mkdir -p "$SB_DIR/bin" && rm -rf -- "$lib" && mv -- "$new" "$lib" || return 1
      sb_write "$SB_DIR/bin/$command" 755 "#!/bin/sh
# Installed by studio-bootstrap: runs $package from ../lib/$package.
lib=\$(cd \"\$(dirname \"\$0\")/../lib/$package\" && pwd) || exit 1
PYTHONPATH=\"\$lib\${PYTHONPATH:+:\$PYTHONPATH}\" exec python3 -c 'import sys; from $module import main; sys.exit(main())' \"\$@\""
      return
    fi
    SB_ERROR="installing $package from $source failed: $SB_ERROR"
    # The caller logs the last failure.
    [[ $source == "${sources[-1]}" ]] || sb_log "$SB_ERROR; trying the next source"
  done
  rm -rf -- "$new"
  return 1
}

# Removes what the installs of syncs that are gone left in ~/.studio-bootstrap/lib:
# a folder PACKAGE.new.PID, its downloaded wheel PACKAGE.new.PID.wheel and its
# netrc file. A PID not running on this host is gone in a JupyterLab or
# CodeEditor space, whose home serves one app at a time. In the shared home of
# Studio Classic it may run on another host, so its files must also be older
# than one install.
sb_clean_lib() {
  local path pid now
  TZ=UTC0 printf -v now '%(%s)T' -1
  for path in "$SB_DIR"/lib/*.new.*; do
    pid=${path##*.new.}
    pid=${pid%%.*}
    # A glob that matches nothing stays as it is, and its pid is then "*".
    [[ $pid =~ ^[0-9]+$ && $pid != "$$" ]] || continue
    sb_start_ticks "$pid" >/dev/null && continue
    ((now - $(stat -c %Y -- "$path" || echo "$now") > SB_FETCH_TIMEOUT + SB_INSTALL_TIMEOUT + 10)) || continue
    rm -rf -- "$path"
  done
}

# Sets SB_LIMIT to a timeout in seconds, cut to the time left before the
# deadline of the sync, and logs the cut. Fails once the deadline has passed.
sb_limit() {
  local left=$((SB_DEADLINE_AT - SECONDS))
  SB_LIMIT=$1
  if ((left < 1)); then
    SB_ERROR="the sync deadline of ${SB_DEADLINE}s has passed"
    return 1
  fi
  if ((left < SB_LIMIT)); then
    SB_LIMIT=$left
    sb_log "$2: the sync deadline cuts the timeout from ${1}s to ${left}s"
  fi
}

# Runs a command bounded in time and keeps its output in SB_OUTPUT. On
# failure SB_ERROR is the last line of that output, redacted.
sb_run() {
  local rc
  sb_limit "$1" "install" || return 1
  shift
  SB_OUTPUT=$(timeout -k 10 "$SB_LIMIT" "$@" 2>&1)
  rc=$?
  ((rc == 124 || rc == 137)) && SB_OUTPUT="timed out after ${SB_LIMIT}s"
  ((rc == 0)) || SB_ERROR=$(printf '%s\n' "$SB_OUTPUT" | sb_redact | tail -n 1)
  return "$rc"
}

# Runs pip install into a folder: its arguments are the folder and pip's.
# --no-user overrides a "user = true" of pip's config, which --target rejects.
sb_pip_install() {
  sb_run "$SB_INSTALL_TIMEOUT" python3 -m pip install --quiet \
    --disable-pip-version-check --no-input --no-user --target "$@"
}

# Runs sb_pip_install without pip's config files (PIP_CONFIG_FILE=/dev/null)
# and PIP_* variables (--isolated), whose index, no-index or proxy settings
# would change or stall a source that names its own location. Each
# sb_pip_SOURCE takes the package, a version pin, the folder and pip options.
sb_pip() {
  PIP_CONFIG_FILE=/dev/null sb_pip_install "$@" --isolated
}

# PyPI keeps pip's config and variables, where a proxy or mirror may be set.
sb_pip_pypi() {
  sb_pip_install "${@:3}" "$1$2"
}

sb_tools() {
  local i=$1
  if ! command -v git >/dev/null; then
    SB_ERROR="git not found on PATH ($PATH)"
    return 1
  fi
  if [[ ${SB_TRANSPORTS[$i]} == https ]]; then
    sb_ensure_tool aws awscli awscli.clidriver
  else
    sb_ensure_tool git-remote-codecommit git-remote-codecommit git_remote_codecommit
  fi
}

# Clones into a temporary sibling and renames it into place only on success,
# so that a failure never leaves a half folder.
sb_clone() {
  local i=$1 dest=$2 url=$3 parent base tmp args=(clone --quiet)
  parent=$(dirname -- "$dest")
  base=$(basename -- "$dest")
  tmp="$parent/.$base.studio-bootstrap-clone"
  if ! sb_retry "${SB_NAMES[$i]}: install" sb_tools "$i"; then
    SB_OUTCOME=$SB_ERROR
    return 1
  fi
  mkdir -p -- "$parent" || { SB_OUTCOME="cannot create $parent"; return 1; }
  if [[ -n ${SB_BRANCHES[$i]} ]]; then
    args+=(--branch "${SB_BRANCHES[$i]}")
  fi
  # The lock makes this process the only writer of the temporary folder.
  rm -rf -- "$tmp"
  if ! sb_retry "${SB_NAMES[$i]}: clone" sb_clone_once "$i" "$tmp" "${args[@]}" -- "$url" "$tmp"; then
    rm -rf -- "$tmp"
    # git-remote-codecommit fails this way when its botocore is too old to know the region.
    if [[ $SB_ERROR == *"Region is not available"* && ${SB_TRANSPORTS[$i]} == codecommit && ${SB_FALLBACKS[$i]} == true ]]; then
      sb_log "${SB_NAMES[$i]}: $SB_ERROR (botocore" \
        "$(python3 -c 'import botocore; print(botocore.__version__)' 2>/dev/null || echo unknown));" \
        "falling back to HTTPS with the credential helper"
      SB_TRANSPORTS[i]=https
      url=$(sb_url "$i")
      sb_clone "$i" "$dest" "$url"
      return
    fi
    SB_OUTCOME="clone failed: $SB_ERROR"
    return 1
  fi
  if [[ -e $dest || -L $dest ]] || ! mv -T -- "$tmp" "$dest"; then
    rm -rf -- "$tmp"
    SB_OUTCOME="$dest appeared during the clone; left untouched"
    return 1
  fi
  SB_OUTCOME="cloned into ~/${SB_PATHS[$i]}"
}

sb_clone_once() {
  local i=$1 tmp=$2
  shift 2
  rm -rf -- "$tmp"
  sb_git "$i" "$SB_CLONE_TIMEOUT" "$@"
}

# Fetches, then fast-forwards the checked-out branch only when the work tree
# is clean, nothing is in progress and no file of the user is in the way.
# Otherwise it leaves the branch as it is, and the outcome gives the reason.
sb_update() {
  local i=$1 dest=$2 gitdir branch head upstream before changes path err why
  if ! sb_retry "${SB_NAMES[$i]}: install" sb_tools "$i"; then
    SB_OUTCOME=$SB_ERROR
    return 1
  fi
  before=$(git -C "$dest" rev-parse -q --verify '@{upstream}' 2>/dev/null) || before=''
  if ! sb_retry "${SB_NAMES[$i]}: fetch" sb_git "$i" "$SB_FETCH_TIMEOUT" -C "$dest" fetch --quiet --prune origin; then
    SB_OUTCOME="fetch failed: $SB_ERROR"
    return 1
  fi
  gitdir=$(git -C "$dest" rev-parse --absolute-git-dir) || { SB_OUTCOME="not a readable repository"; return 1; }
  head=$(git -C "$dest" rev-parse -q --verify HEAD) || head=''
  if [[ -e $gitdir/MERGE_HEAD || -d $gitdir/rebase-merge || -d $gitdir/rebase-apply || -e $gitdir/CHERRY_PICK_HEAD || -e $gitdir/REVERT_HEAD ]]; then
    why="a merge, rebase, cherry-pick or revert is in progress"
  elif ! branch=$(git -C "$dest" symbolic-ref -q --short HEAD); then
    why="HEAD is detached"
  elif ! upstream=$(git -C "$dest" rev-parse -q --verify '@{upstream}' 2>/dev/null); then
    why="$branch has no upstream branch (deleted upstream?)"
  elif [[ $head == "$upstream" ]]; then
    SB_OUTCOME="up to date on $branch"
    return 0
  elif ! changes=$(git -C "$dest" status --porcelain --untracked-files=no 2>&1); then
    why="git status failed ($(sb_head "$changes"))"
  elif [[ -n $changes ]]; then
    why="$branch has uncommitted changes"
  elif [[ -n $head ]] && ! git -C "$dest" merge-base --is-ancestor HEAD "$upstream"; then
    if [[ $head == "$before" ]]; then
      why="$branch was rewritten upstream (force-pushed)"
    elif git -C "$dest" merge-base --is-ancestor "$upstream" HEAD; then
      why="$branch has local commits ahead of upstream"
    else
      why="$branch has diverged from upstream"
    fi
  elif path=$(sb_path_in_way "$dest" "$head" "$upstream"); then
    why="upstream of $branch adds $path, where the work tree has an untracked or ignored file"
  elif ! err=$(git -C "$dest" merge --ff-only --quiet "$upstream" 2>&1 >/dev/null); then
    why="git merge --ff-only failed ($(sb_head "$err"))"
  else
    SB_OUTCOME="fast-forwarded $branch to ${upstream:0:12}"
    return 0
  fi
  SB_OUTCOME="fetched, not fast-forwarded: $why"
}

# Prints the first path that the fast-forward to a commit would add where the
# work tree already has a file or folder that HEAD does not track. git's
# fast-forward refuses to overwrite an untracked file but replaces an ignored
# one, and the folder of ignored files around it, without a word.
sb_path_in_way() {
  local dest=$1 head=$2 upstream=$3 path prefix base
  base=${head:-$(git -C "$dest" hash-object -t tree /dev/null)}
  while IFS= read -r -d '' path; do
    if [[ -e $dest/$path || -L $dest/$path ]]; then
      printf '%s\n' "$path"
      return 0
    fi
    prefix=$path
    while [[ $prefix == */* ]]; do
      prefix=${prefix%/*}
      if [[ -L $dest/$prefix || (-e $dest/$prefix && ! -d $dest/$prefix) ]] &&
        ! git -C "$dest" cat-file -e "$base:$prefix" 2>/dev/null; then
        printf '%s\n' "$prefix"
        return 0
      fi
    done
  done < <(git -C "$dest" diff-tree -r -z --name-only --no-renames --diff-filter=A "$base" "$upstream")
  return 1
}

# A lock is a folder made with mkdir, which is atomic on local disks and on
# the EFS home of Studio Classic. Its owner file names the host, the process,
# the process's start time in clock ticks since boot, and the time the lock
# was taken.
# A lock is stale in three cases. On the same host, its process is gone or
# its id now belongs to another process. From another host, it is stale when
# the home serves one app at a time (JupyterLab and CodeEditor spaces). Any
# lock is stale once older than the sync deadline plus five minutes.
sb_lock() {
  local lock="$SB_DIR/locks/$1.lock"
  if mkdir -- "$lock" 2>/dev/null; then
    sb_own_lock "$lock"
    return
  fi
  if sb_lock_stale "$lock" && sb_break_lock "$lock" && mkdir -- "$lock" 2>/dev/null; then
    sb_own_lock "$lock"
    return
  fi
  SB_LOCK_HOLDER=$(sb_first_line "$lock/owner")
  SB_LOCK_HOLDER=${SB_LOCK_HOLDER:-another process}
  return 1
}

sb_own_lock() {
  local now ticks
  TZ=UTC0 printf -v now '%(%s)T' -1
  ticks=$(sb_start_ticks "$$") || ticks=''
  printf 'host=%s pid=%s started=%s%s\n' "${HOSTNAME:-unknown}" "$$" "$now" \
    "${ticks:+ ticks=$ticks}" >"$1/owner"
  SB_HELD=$1
}

# Prints the start time of a process in clock ticks since boot, which is
# field 22 of /proc/PID/stat, counted after the command name because the
# name may contain spaces. Fails for a process that is gone or a zombie.
sb_start_ticks() {
  local stat fields=()
  IFS= read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  read -ra fields <<<"${stat##*) }"
  [[ ${fields[0]:-} != [ZX] && ${fields[19]:-} =~ ^[0-9]+$ ]] || return 1
  printf '%s\n' "${fields[19]}"
}

sb_lock_stale() {
  local owner host pid started ticks current now
  owner=$(sb_first_line "$1/owner")
  TZ=UTC0 printf -v now '%(%s)T' -1
  if [[ ! $owner =~ ^host=([^ ]*)\ pid=([0-9]+)\ started=([0-9]{1,18})(\ ticks=([0-9]{1,18}))?$ ]]; then
    # An owner file not yet written: stale only once the folder is old.
    started=$(stat -c %Y -- "$1" 2>/dev/null) || return 1
    ((now - started > 60))
    return
  fi
  host=${BASH_REMATCH[1]} pid=${BASH_REMATCH[2]} started=${BASH_REMATCH[3]}
  ticks=${BASH_REMATCH[5]}
  if [[ $host == "${HOSTNAME:-unknown}" ]]; then
    # /proc separates a live process of another user (for which kill -0
    # fails) from a zombie (for which it succeeds).
    if [[ -r /proc/$$/stat ]]; then
      current=$(sb_start_ticks "$pid") || return 0
      [[ -z $ticks || $current == "$ticks" ]] || return 0
    elif ! kill -0 "$pid" 2>/dev/null; then
      return 0
    fi
  fi
  ((now - started > SB_DEADLINE + 300))
}

# Removes a stale lock while holding a second lock, so that two processes
# never both break it and one of them removes a lock just taken by the other.
sb_break_lock() {
  local breaker="$1.break" rc=1
  if ! mkdir -- "$breaker" 2>/dev/null; then
    # A breaker that died leaves its folder; it is stale after a minute.
    local now changed
    TZ=UTC0 printf -v now '%(%s)T' -1
    changed=$(stat -c %Y -- "$breaker" 2>/dev/null) || return 1
    ((now - changed > 60)) || return 1
    rmdir -- "$breaker" 2>/dev/null
    mkdir -- "$breaker" 2>/dev/null || return 1
  fi
  if sb_lock_stale "$1"; then
    sb_log "removing stale lock $1 ($(sb_first_line "$1/owner"))"
    rm -rf -- "$1" && rc=0
  fi
  rmdir -- "$breaker"
  return "$rc"
}

# Removes the lock that this sync holds, if any. The sync holds at most one
# lock at a time, in SB_HELD, and the EXIT trap calls this too.
sb_unlock() {
  [[ -z $SB_HELD ]] || rm -rf -- "$SB_HELD"
  SB_HELD=''
}

# --- terminal hook ------------------------------------------------------------

# Runs in each interactive shell, sourced from ~/.bashrc through hook.sh. It
# uses only builtins when nothing is wrong: it starts a sync when a
# repository is missing and no sync holds its lock, and prints one line when
# the last sync of a repository failed.
sb_hook() {
  local dir="$HOME/.studio-bootstrap" i state missing=0 failed=()
  [[ $- == *i* ]] || return 0
  for i in "${!SB_HOOK_PATHS[@]}"; do
    if [[ ! -e $HOME/${SB_HOOK_PATHS[$i]} && ! -d $dir/locks/${SB_HOOK_PROFILES[$i]}.lock ]]; then
      missing=1
    fi
    state=''
    if [[ -r $dir/status/${SB_HOOK_PROFILES[$i]} ]]; then
      IFS= read -r state <"$dir/status/${SB_HOOK_PROFILES[$i]}"
    fi
    if [[ $state == state=failed ]]; then
      failed+=("${SB_HOOK_PATHS[$i]}")
    fi
  done
  if ((missing)) && [[ -x $dir/sync.sh ]]; then
    sb_spawn "$dir"
  fi
  if ((${#failed[@]})); then
    printf 'studio-bootstrap: the last sync of ~/%s failed; see ~/.studio-bootstrap/sync.log\n' "${failed[@]}"
  fi
  return 0
}

# Prints hook.sh: the repository paths and lock names, the hook, and a call.
sb_hook_program() {
  printf '# Written by studio-bootstrap at each app start.\n'
  printf 'SB_HOOK_PATHS=(%s)\n' "$(printf ' %q' "${SB_PATHS[@]}")"
  printf 'SB_HOOK_PROFILES=(%s)\n' "$(printf ' %q' "${SB_PROFILES[@]}")"
  declare -f sb_hook sb_spawn
  printf 'sb_hook\nunset -f sb_hook sb_spawn\nunset SB_HOOK_PATHS SB_HOOK_PROFILES\n'
}

# --- foreground steps ---------------------------------------------------------

# Merges the managed profiles into ~/.aws/config; exit 3 from awk means the
# file does not parse the way botocore parses it, and it stays unchanged.
sb_aws_config() {
  local target source new err rc line taken=()
  mkdir -p "$HOME/.aws" || return 1
  target=$(sb_resolve "$HOME/.aws/config") || return 1
  if [[ -e $target ]] && sb_read_only "$target"; then
    SB_SKIP_SYNC="the file ~/.aws/config is read-only"
    sb_log "the file ~/.aws/config is read-only, so it was left unchanged"
    return 1
  fi
  source=$target
  [[ -e $source ]] || source=/dev/null
  new="$target.studio-bootstrap.$$"
  # awk's stderr (a parse error, or the sections taken over) stays in memory,
  # because a full disk may not take one more file.
  err=$(SB_BLOCK=$SB_AWS_BLOCK SB_MANAGED="${SB_PROFILES[*]/#/profile/}" \
    SB_NONL=$(sb_no_final_newline "$target") \
    awk -v begin="$SB_BEGIN" -v end="$SB_END" "$SB_AWK_INI" "$source" \
    2>&1 >"$new")
  rc=$?
  line=$(sb_head "$err")
  if ((rc == 3)); then
    SB_SKIP_SYNC="the file ~/.aws/config is invalid"
    line="it does not parse ($line); fix it, then restart the app"
  elif ((rc != 0)); then
    line="reading or rewriting it failed (${line:-exit $rc})"
  fi
  if ((rc != 0)); then
    rm -f -- "$new"
    sb_log "the file ~/.aws/config was left unchanged: $line"
    return 1
  fi
  if [[ -n $err ]]; then
    mapfile -t taken <<<"$err"
  fi
  if cmp -s "$new" "$target"; then
    rm -f "$new"
    return 0
  fi
  if ((${#taken[@]} > 0)); then
    sb_backup "$target" || { rm -f "$new"; return 1; }
    for line in "${taken[@]}"; do
      sb_log "took over $line of ~/.aws/config; previous file saved as $SB_BACKUP"
    done
  fi
  if ! chmod 600 "$new" || ! mv -f "$new" "$target"; then
    rm -f "$new"
    return 1
  fi
  sb_log "wrote the profiles ${SB_PROFILES[*]} to ~/.aws/config"
}

# Writes the credential sections to their own file and includes it from
# ~/.gitconfig after everything else, so its helper reset comes last.
sb_git_config() {
  local target source new err text host=${CODE_COMMIT_ENDPOINT:-}
  text=$SB_GIT_BLOCK
  if [[ -n $host ]]; then
    if [[ $host =~ ^[A-Za-z0-9.-]+(:[0-9]{1,5})?$ ]]; then
      text=${SB_GIT_ENDPOINT_BLOCK//@ENDPOINT@/$host}
    else
      sb_log "CODE_COMMIT_ENDPOINT ignored: not a host or host:port"
    fi
  fi
  mkdir -p "$SB_DIR" || return 1
  sb_write "$SB_DIR/gitconfig" 600 "$text" || return 1

  target=$(sb_resolve "$HOME/.gitconfig") || return 1
  if [[ -e $target ]] && sb_read_only "$target"; then
    sb_log "the file ~/.gitconfig is read-only, so it was left unchanged;" \
      "add [include] path = ~/.studio-bootstrap/gitconfig to it yourself"
    return 1
  fi
  # A git that does not run at all cannot judge the file, so it is not asked;
  # git reads ~/.gitconfig even for --version, hence GIT_CONFIG_GLOBAL.
  if [[ -e $target ]] && GIT_CONFIG_GLOBAL=/dev/null git --version >/dev/null 2>&1; then
    if ! err=$(git config --file "$target" --list 2>&1 >/dev/null); then
      sb_log "the file ~/.gitconfig was left unchanged: it does not parse" \
        "($(sb_head "$err"))"
      return 1
    fi
  fi
  source=$target
  [[ -e $source ]] || source=/dev/null
  new="$target.studio-bootstrap.$$"
  if ! SB_BLOCK=$'[include]\n\tpath = ~/.studio-bootstrap/gitconfig' \
    awk -v begin="$SB_BEGIN" -v end="$SB_END" "$SB_AWK_APPEND" "$source" \
    >"$new"; then
    rm -f "$new"
    return 1
  fi
  sb_install_file "$new" "$target" 644
}

# Adds one line to ~/.bashrc that sources the terminal hook.
sb_bashrc() {
  local target new nonl
  local line='if [ -f ~/.studio-bootstrap/hook.sh ]; then . ~/.studio-bootstrap/hook.sh; fi  # studio-bootstrap'
  target=$(sb_resolve "$HOME/.bashrc") || return 1
  if [[ -e $target ]] && grep -Fqx -- "$line" "$target"; then
    return 0
  fi
  new="$target.studio-bootstrap.$$"
  if ! { [[ ! -e $target ]] || cat -- "$target"; } >"$new"; then
    rm -f -- "$new"
    sb_log "copying ~/.bashrc failed, so it was left unchanged"
    return 1
  fi
  # The copy is checked again, because another start may have added the line
  # since the check above.
  if grep -Fqx -- "$line" "$new"; then
    rm -f -- "$new"
    return 0
  fi
  nonl=$(sb_no_final_newline "$new")
  if ! { [[ -z $nonl ]] || echo; printf '%s\n' "$line"; } >>"$new"; then
    rm -f -- "$new"
    return 1
  fi
  sb_install_file "$new" "$target" 644
}

# Writes the sync program and the hook, then starts the sync detached so that
# it outlives this script.
sb_start_sync() {
  local creds=${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:-}${AWS_CONTAINER_CREDENTIALS_FULL_URI:-}
  mkdir -p "$SB_DIR/status" "$SB_DIR/locks" || return 1
  sb_write "$SB_DIR/sync.sh" 700 "$(sb_program sb_sync_main)" || return 1
  sb_write "$SB_DIR/hook.sh" 600 "$(sb_hook_program)" || return 1
  if [[ -z $creds ]]; then
    sb_log "neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor" \
      "AWS_CONTAINER_CREDENTIALS_FULL_URI is set: repositories not synced"
    return 0
  fi
  if [[ -n ${SB_SKIP_SYNC:-} ]]; then
    sb_log "sync skipped: $SB_SKIP_SYNC"
    return 0
  fi
  if ! { : >>"$SB_DIR/sync.log"; } 2>/dev/null; then
    sb_log "the file ~/.studio-bootstrap/sync.log is not writable, so the sync was not started"
    return 1
  fi
  sb_spawn "$SB_DIR"
  sb_log "syncing ${#SB_NAMES[@]} repositories in the background;" \
    "log: ~/.studio-bootstrap/sync.log"
}

main() {
  local failures=0
  sb_log "studio-bootstrap $SB_VERSION ($SB_APP_TYPE): starting"
  if [[ ! -d ${HOME:-} ]]; then
    sb_log "HOME (${HOME:-unset}) is not a folder, so nothing was done"
    [[ $SB_STRICT != true ]]
    return
  fi
  SB_DIR="$HOME/.studio-bootstrap"
  if mkdir -p -- "$SB_DIR" 2>/dev/null; then
    SB_LOGFILE="$SB_DIR/sync.log"
  fi
  sb_step "merge ~/.aws/config" sb_aws_config || failures=1
  sb_step "include Git credential settings" sb_git_config || failures=1
  sb_step "add the terminal hook to ~/.bashrc" sb_bashrc || failures=1
  sb_step "start the background sync" sb_start_sync || failures=1
  sb_give_back "$HOME/.aws" "$SB_DIR" "$(sb_resolve "$HOME/.aws/config")" \
    "$(sb_resolve "$HOME/.gitconfig")" "$(sb_resolve "$HOME/.bashrc")"
  if ((failures)) && [[ $SB_STRICT == true ]]; then
    sb_log "a step failed and strict mode is on: failing the app start"
    return 1
  fi
  return 0
}

main "$@"
