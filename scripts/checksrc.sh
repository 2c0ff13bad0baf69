#!/usr/bin/env bash
# Refuse banned C functions in project sources (curl's checksrc idea).
set -euo pipefail
cd "$(dirname "$0")/.."
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|atof)\s*\('
if grep -rnE "$banned" src tests bench --include='*.c' --include='*.h' | grep -v 'checksrc:allow'; then
  echo "checksrc: banned function used (see docs/architecture.md, 'Strings and input')" >&2
  exit 1
fi
echo "checksrc: ok"
