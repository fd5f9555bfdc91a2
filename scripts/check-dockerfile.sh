#!/usr/bin/env bash
# Replays Silo/Dockerfile's build stage without a Docker daemon (none on CI machines): the same COPY lines into an
# empty build context, the same RUN lines, then the runtime stage's ENTRYPOINT started with --version. A file the
# image needs but the Dockerfile does not copy fails here, as it would in `docker build`.
set -euo pipefail
cd "$(dirname "$0")/.."
dockerfile=${1:-Silo/Dockerfile}

# The build context as docker sends it: .dockerignore keeps bin/ and obj/ out.
copy_dir() { tar -C "$1" --exclude=bin --exclude=obj -cf - . | tar -C "$2" -xf -; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
workdir=/
stage=0
entrypoint=""
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    FROM*) stage=$((stage + 1)); workdir=/ ;;
    WORKDIR*) workdir=$(echo "$line" | awk '{print $2}'); mkdir -p "$root$workdir" ;;
    ENTRYPOINT*) entrypoint=$(echo "$line" | sed -E 's/^ENTRYPOINT *//') ;;
    COPY\ --from=*)
      # The runtime stage copies the build stage's output: same root here, so only check it exists.
      source=$(echo "$line" | awk '{print $3}')
      [ -e "$root$source" ] || { echo "check-dockerfile: $line: $source was not produced by the build stage" >&2; exit 1; }
      target=$(echo "$line" | awk '{print $4}')
      [ "$target" = "." ] && target=$workdir
      [ "$root$source" = "$root$target" ] || cp -r "$root$source/." "$root$target/" ;;
    COPY*)
      [ "$stage" = 1 ] || continue
      read -r -a parts <<< "${line#COPY }"
      target=${parts[${#parts[@]}-1]}
      case "$target" in /*) ;; *) target="$workdir/$target" ;; esac
      for source in "${parts[@]:0:${#parts[@]}-1}"; do
        [ -e "$source" ] || { echo "check-dockerfile: $line: $source does not exist in the repository" >&2; exit 1; }
        if [[ "$target" == */ ]]; then
          mkdir -p "$root$target"
          if [ -d "$source" ]; then copy_dir "$source" "$root$target"; else cp "$source" "$root$target"; fi
        else
          mkdir -p "$(dirname "$root$target")"; cp -r "$source" "$root$target"
        fi
      done ;;
    RUN*)
      [ "$stage" = 1 ] || continue
      command=${line#RUN }
      # Absolute image paths land under the replay's root; bin/obj of the repository are not in the context.
      command=$(echo "$command" | sed -E "s# /app# $root/app#g")
      echo "check-dockerfile: RUN $command"
      (cd "$root$workdir" && eval "$command") ;;
  esac
done < "$dockerfile"

[ -n "$entrypoint" ] || { echo "check-dockerfile: no ENTRYPOINT" >&2; exit 1; }
dll=$(echo "$entrypoint" | sed -E 's/.*"dotnet", *"([^"]+)".*/\1/')
app=$root/app
[ -f "$app/$dll" ] || { echo "check-dockerfile: ENTRYPOINT runs $dll, which the build stage did not publish" >&2; exit 1; }
version=$(cd "$app" && dotnet "$dll" --version)
echo "check-dockerfile: $dockerfile builds; its entry point answers --version: $version"
