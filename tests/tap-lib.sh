# tap-lib.sh — shared TAP helper for the tier drivers (tests/lua/run.sh,
# tests/linux/run.sh), sourced, not run. They merge several TAP streams into ONE:
#   emit PREFIX < TAP
# renumbers result lines into the caller's running count $n (counting real failures,
# not "# TODO" ones, in $failed), keeps comments, turns other text into comments and
# drops plans and version lines. Results are printed as "ok N PREFIXdescription", so
# callers pass a PREFIX starting with "- ". The caller sets n=0 failed=0 first.
emit() {
  local prefix=$1 line rest
  while IFS= read -r line; do
    case $line in
      "TAP version"*|1..*) ;;
      "ok "[0-9]*|"not ok "[0-9]*)
        n=$((n + 1))
        if [ "${line#not }" != "$line" ]; then
          rest=${line#not ok }; rest=${rest#* }
          case $rest in *"# TODO"*|*"# todo"*) ;; *) failed=$((failed + 1)) ;; esac
          echo "not ok $n ${prefix}${rest#- }"
        else
          rest=${line#ok }; rest=${rest#* }
          echo "ok $n ${prefix}${rest#- }"
        fi ;;
      "#"*) echo "$line" ;;
      "") ;;
      *) echo "# $line" ;;
    esac
  done
}
