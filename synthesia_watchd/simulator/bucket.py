"""The simulator's own view of its upload bucket, through moto with an admin key.

The service asks what a client uploaded (size, ETag, type, digest, first bytes) to judge an
asset the way Synthesia does; ``stop`` empties the bucket so moto frees its memory. These
calls bypass the gateway's checks, faults and request log.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .s3 import REGION, make_admin_client
from .service import ObjectInfo


class BucketAdmin:
    """Admin access to one bucket of the simulator's S3."""

    def __init__(self, s3_url: str, admin_key_id: str, bucket: str) -> None:
        self.client: Any = make_admin_client(s3_url, admin_key_id)
        self.bucket = bucket
        self.client.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """Size, ETag and Content-Type of an object, via our own S3 with the admin key."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError:
            return None
        return ObjectInfo(
            int(head["ContentLength"]), str(head["ETag"]).strip('"'), head.get("ContentType")
        )

    def md5(self, bucket: str, key: str) -> bytes | None:
        """MD5 of an object's bytes, read back in chunks (a multipart ETag is not one)."""
        from botocore.exceptions import BotoCoreError, ClientError

        md5 = hashlib.md5(usedforsecurity=False)
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            for chunk in iter(lambda: body.read(1 << 20), b""):
                md5.update(chunk)
        except (BotoCoreError, ClientError):
            return None
        return md5.digest()

    def first_bytes(self, bucket: str, key: str) -> bytes:
        """The first 4 KiB of an object (where a sample video's mvhd is)."""
        from botocore.exceptions import ClientError

        try:
            got = self.client.get_object(Bucket=bucket, Key=key, Range="bytes=0-4095")
        except ClientError:
            return b""
        return bytes(got["Body"].read())

    def empty(self) -> None:
        """Delete objects, abort uploads and drop the bucket, so moto frees their memory."""
        from botocore.exceptions import BotoCoreError, ClientError

        s3 = self.client
        try:
            for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket):
                for up in page.get("Uploads", []):
                    s3.abort_multipart_upload(
                        Bucket=self.bucket, Key=up["Key"], UploadId=up["UploadId"]
                    )
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
                for obj in page.get("Contents", []):
                    s3.delete_object(Bucket=self.bucket, Key=obj["Key"])
            s3.delete_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError):
            pass

    def close(self) -> None:
        """Close the admin client's connections."""
        self.client.close()
