#!/bin/sh
# One-shot set-up of MinIO for TaylorDash (the compose service `minio-init`, image minio/mc).
# Idempotent: run it again after changing S3_SECRET_KEY to update the kernel's key.
#
#   - the bucket $S3_BUCKET, private, with versioning (an overwritten or deleted object can be restored);
#   - the policy `taylordash`, limited to that bucket (policy.json);
#   - the user $S3_ACCESS_KEY / $S3_SECRET_KEY with that policy: the kernel's TD_STORAGE_URL credentials.
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${S3_SECRET_KEY:?}"
endpoint=${MINIO_ENDPOINT:-http://minio:9000}
bucket=${S3_BUCKET:-taylordash}
access_key=${S3_ACCESS_KEY:-taylordash}
here=$(dirname "$0")

mc alias set td "$endpoint" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "td/$bucket"
mc anonymous set none "td/$bucket"
mc version enable "td/$bucket"

policy=$(mktemp)
sed "s/__BUCKET__/$bucket/g" "$here/policy.json" > "$policy"
mc admin policy create td taylordash "$policy"
rm -f "$policy"
mc admin user add td "$access_key" "$S3_SECRET_KEY"
mc admin policy attach td taylordash --user "$access_key" 2>/dev/null || true  # already attached
echo "minio-init: bucket $bucket and user $access_key ready"
