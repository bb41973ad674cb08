#!/usr/bin/env bash
# gen-man.sh BINARY NAME-LINE OUT [SUBCOMMAND...]: the man page of BINARY,
# made by help2man from its own --help and --version.
#
# Why help2man: the --help text is already the documented, tested source
# of every option (t-cli-help checks it), so the man page cannot drift
# from it, and there is no second text to keep in step. docs/man/NAME.h2m
# adds what --help does not say (files, see also). Each SUBCOMMAND
# ("volume create") adds "BINARY SUBCOMMAND --help" to a SUBCOMMANDS
# section, so triplexctl's page holds the help of every command.
set -euo pipefail
bin=$1 name=$2 out=$3
shift 3
prog=$(basename "$bin")
src=$(cd "$(dirname "$0")/.." && pwd)
inc=$(mktemp)
trap 'rm -f "$inc"' EXIT
[[ -f $src/docs/man/$prog.h2m ]] && cat "$src/docs/man/$prog.h2m" >>"$inc"
if (($#)); then
	printf '[SUBCOMMANDS]\n' >>"$inc"
	for sub in "$@"; do
		# roff: a leading "." or "'" would be a request; backslashes escaped.
		{
			printf '.SS %s %s\n.nf\n' "$prog" "$sub"
			# shellcheck disable=SC2086 # words, by design
			"$bin" $sub --help | sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
			printf '.fi\n'
		} >>"$inc"
	done
fi
help2man --section "${out##*.}" --no-info --no-discard-stderr --name "$name" --include "$inc" \
	--output "$out" "$bin"
