# bash completion for provium(1); installed as
# PREFIX/share/bash-completion/completions/provium (`make install`, the .deb).
# Try it from a checkout: source dist/provium.bash; then `provium <TAB>`.
#
# Subcommands and flags come from the binary itself (`provium --help`,
# `provium CMD --help`), so they cannot drift from what it accepts; values of the
# flags that take a fixed set (--backend, --format) and the sub-subcommands of
# kernel, snapshots and events are listed here. Needs nothing from the
# bash-completion package.

# _provium_words PROG ARGS...: the words PROG ARGS --help prints that look like
# flags (-x, --long-flag), or with ARGS empty the command names of `PROG --help`.
_provium_words() {
  local prog=$1; shift
  if [ $# -eq 0 ]; then
    "$prog" --help 2>/dev/null | awk '/^commands:/ { on = 1; next } on && !NF { exit } on { print $1 }'
  else
    "$prog" "$@" --help 2>/dev/null | grep -oE '(^|[][ ,|])--?[a-zA-Z][a-zA-Z-]*' |
      sed 's/^[][ ,|]//' | sort -u
  fi
}

_provium() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  local prog=${COMP_WORDS[0]} cmd=${COMP_WORDS[1]:-} sub=${COMP_WORDS[2]:-}
  local IFS=$'\n'
  COMPREPLY=()
  # the binary as typed (./build/provium works before an install); ~ expanded
  [[ $prog == "~"* ]] && prog=$HOME${prog#"~"}

  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "$(_provium_words "$prog")" -- "$cur"))
    return 0
  fi

  # values of flags
  case $prev in
    --backend) COMPREPLY=($(compgen -W $'auto\nkvm\nsandbox' -- "$cur")); return 0 ;;
    --format)
      if [ "$cmd" = events ]; then
        local f=$'pretty\njson'
        [ "$sub" = merge ] && f=$'pretty\ntap\njunit\njson'
        COMPREPLY=($(compgen -W "$f" -- "$cur"))
      else
        COMPREPLY=($(compgen -W $'pretty\ntap\njunit\njson' -- "$cur"))
      fi
      return 0 ;;
    --cache-dir) COMPREPLY=($(compgen -d -- "$cur")); return 0 ;;
    --events|--junit|-o|--output|--kernel|--initrd)
      COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
    -j|--jobs|-f|--filter|--tags|--exclude-tags|--timeout|--seed|--shard|--cmdline|--memory|--cpus)
      return 0 ;; # a value to type
  esac

  # sub-subcommands, right after the subcommand
  if [ "$COMP_CWORD" -eq 2 ]; then
    case $cmd in
      kernel) COMPREPLY=($(compgen -W $'build\npath\nhash' -- "$cur")); return 0 ;;
      snapshots) COMPREPLY=($(compgen -W $'ls\nrm\nprune' -- "$cur")); return 0 ;;
      events)
        if [[ $cur != -* ]]; then
          COMPREPLY=($(compgen -W 'merge' -- "$cur") $(compgen -f -- "$cur"))
          return 0
        fi ;;
    esac
  fi

  if [[ $cur == -* ]]; then
    local args=("$cmd")
    [ "$cmd" = events ] && [ "$sub" = merge ] && args+=(merge)
    COMPREPLY=($(compgen -W "$(_provium_words "$prog" "${args[@]}")" -- "$cur"))
    return 0
  fi

  case $cmd in
    run|list) COMPREPLY=($(compgen -f -- "$cur")) ;;   # test files and directories
    events) COMPREPLY=($(compgen -f -- "$cur")) ;;     # recorded streams
    snapshots)
      if [ "$sub" = rm ]; then
        COMPREPLY=($(compgen -W "$("$prog" snapshots ls 2>/dev/null | awk 'NR > 1 && /^[^ ]/ { print $1 }')" -- "$cur"))
      fi ;;
  esac
  return 0
}
complete -o filenames -o bashdefault -F _provium provium
