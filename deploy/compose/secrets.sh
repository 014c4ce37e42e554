#!/bin/sh
# Writes what deploy/compose/compose.yaml needs and no repository holds: .env with a random
# password per NATS user of deploy/nats/accounts.conf and for the routes, and secrets/ with
# nird's token file (one token for Oslo's case system, printed once), person key secret,
# master key (which wraps the persons' data keys: without it no national id can be read) and
# checkpoint signing key.
set -eu
cd "$(dirname "$0")"
umask 077
[ -e .env ] && { echo ".env exists; remove it to make new passwords" >&2; exit 1; }
pw() { printf 'p%s' "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
{
  for v in ROUTE NIRD INGRESS READER OSLO_FAGSYSTEM BERGEN_FAGSYSTEM; do
    echo "NIR_NATS_${v}_PASSWORD=$(pw)"
  done
} > .env
mkdir -p secrets
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > secrets/personkey.secret
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > secrets/master.key
# One checkpoint signing key for both nird: each signs the checkpoints while it holds the lease.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > secrets/checkpoint.key
echo '[]' > secrets/tokens.json
(cd ../.. && go run ./cmd/nirctl token create --file deploy/compose/secrets/tokens.json --name oslo-fagsystem --role kommune --kommune 0301)
# The files are read by nird's user (65532) in the container, through the group of the user
# who runs this script (group_add in compose.yaml): nird refuses a person key file that others
# may read.
chmod 0640 secrets/tokens.json secrets/personkey.secret secrets/master.key secrets/checkpoint.key
echo "NIR_SECRETS_GID=$(id -g)" >> .env
echo "wrote deploy/compose/.env and deploy/compose/secrets/" >&2
