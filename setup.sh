# Usage: source setup.sh   (from any directory)
# Puts the repository root on PYTHONPATH so that `import common` works in every experiment folder.
_hstnn_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
case ":${PYTHONPATH:-}:" in
  *":${_hstnn_root}:"*) ;;
  *) export PYTHONPATH="${_hstnn_root}${PYTHONPATH:+:${PYTHONPATH}}" ;;
esac
unset _hstnn_root
