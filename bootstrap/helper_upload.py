"""Upload, check and remove the git-remote-codecommit wheel of the "s3" source.

Studio domains in a VPC without internet install git-remote-codecommit from
a wheel in S3 when ``"s3"`` is in ``helper.sources``. ``register`` uploads
``helper.wheel`` to ``s3://helper.bucket/helper.key`` in the domain's
account, and the lifecycle script fetches it with the execution role and
compares its sha256 with the one rendered into the script.

API for register, plan and unregister (each returns None when the config
does not use the "s3" source):

- ``s3_client(options, config)``: the S3 AwsClient of the bucket's region,
  with the profile and endpoint of ``options``.
- ``plan_upload(s3, config)`` returns an ``ObjectPlan`` whose ``action`` is
  ``upload`` (no object yet), ``overwrite`` (our object with another
  sha256) or ``keep`` (our object with this sha256). It raises
  ``ForeignObjectError`` when an object without our marker is at the key.
- ``plan_removal(s3, config, other_configs)`` returns an ``ObjectPlan``
  whose ``action`` is ``delete`` (our object) or ``keep`` (no object, an
  object without our marker, or one that another domain of
  ``other_configs`` still uses).
- ``ObjectPlan.apply(s3)`` makes the change and returns one line for the
  report. ``upload`` and ``overwrite`` read the object back and raise when
  it differs from the wheel. When another plan uploaded the same wheel
  first, ``upload`` reports the object as kept. ``keep`` makes no call.
- ``ObjectPlan.as_dict()`` gives ``action``, ``target`` and ``detail`` for
  the plan table, and ``mutating`` is true when ``apply`` changes anything.

Only reads happen before ``apply``: HeadObject, and HeadBucket after a 404
to tell a missing bucket from a missing key. Every failure is an AwsError
or BootstrapError of one line that names the bucket, the key and the fix.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootstrap.aws import AwsClient, AwsOptions, make_session
from bootstrap.config import Config
from bootstrap.errors import AwsError, BootstrapError

logger = logging.getLogger(__name__)

# User metadata of the uploaded object. S3 returns metadata keys in lowercase.
SHA256_METADATA = "studio-bootstrap-sha256"
MARKER_METADATA = "managed-by"
MARKER_VALUE = "studio-bootstrap"
# A wheel is a ZIP archive (PEP 427), and no media type is registered for it.
CONTENT_TYPE = "application/zip"

UPLOAD = "upload"
OVERWRITE = "overwrite"
DELETE = "delete"
KEEP = "keep"

# Error codes of a denied request: HEAD responses have no body, so botocore
# reports their HTTP status as the code.
ACCESS_DENIED_CODES = ("AccessDenied", "403", "Forbidden")
NOT_FOUND_CODES = ("404", "NoSuchKey", "NotFound")


class ForeignObjectError(BootstrapError):
    """Raised when an object without our marker metadata is at the wheel's key."""


@dataclass(frozen=True)
class Wheel:
    """The local wheel file and its digest."""

    path: Path
    sha256: str
    size: int

    @classmethod
    def read(cls, path: Path) -> Wheel:
        """Hash the wheel file, raising BootstrapError when it cannot be read."""
        return cls(path, *_digest(_read_bytes(path)))


@dataclass(frozen=True)
class ObjectPlan:
    """One planned change of the uploaded wheel, for the plan table and apply."""

    action: str  # upload, overwrite, delete or keep
    bucket: str
    key: str
    detail: str
    # The local wheel of upload and overwrite, None for delete and keep.
    wheel: Wheel | None = None
    # The ETag that HeadObject read: overwrite and delete send it as If-Match.
    etag: str | None = None

    @property
    def target(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def mutating(self) -> bool:
        return self.action != KEEP

    def as_dict(self) -> dict[str, str]:
        return {"action": self.action, "target": self.target, "detail": self.detail}

    def apply(self, s3: AwsClient) -> str:
        """Make the planned change and return a line that reports it."""
        if self.action in (UPLOAD, OVERWRITE):
            return self._put(s3)
        if self.action == DELETE:
            return self._delete(s3)
        return f"kept {self.target} ({self.detail})"

    def _put(self, s3: AwsClient) -> str:
        assert self.wheel is not None
        body = _read_bytes(self.wheel.path)
        sha256, size = _digest(body)
        if sha256 != self.wheel.sha256:
            raise BootstrapError(
                f"{self.wheel.path} changed after the plan for {self.target} was "
                "made; run register again"
            )
        arguments = self._put_arguments(s3, body, sha256)
        try:
            response = _call(s3, "PutObject", self.bucket, self.key, **arguments)
        except AwsError as error:
            # Two domains of one config that share the location each plan an
            # upload, and the second PutObject finds the first one's object.
            if error.code != "PreconditionFailed" or not self._is_current(s3):
                raise
            return f"kept {self.target} (it already contains this wheel)"
        _check_uploaded(s3, self.bucket, self.key, sha256, size)
        return f"uploaded {self.target} ({size} bytes{_encryption(response)})"

    def _put_arguments(self, s3: AwsClient, body: bytes, sha256: str) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key,
            "Body": body,
            "ContentType": CONTENT_TYPE,
            "Metadata": {SHA256_METADATA: sha256, MARKER_METADATA: MARKER_VALUE},
        }
        # Conditional writes keep an object that appeared or changed after
        # HeadObject read the key, because S3 then returns 412 PreconditionFailed.
        if self.action == UPLOAD:
            arguments["IfNoneMatch"] = "*"
        elif self.etag:
            arguments["IfMatch"] = self.etag
        if _accepts(s3, "PutObject", "ChecksumSHA256"):
            arguments["ChecksumSHA256"] = _base64_sha256(body)
        # No ServerSideEncryption argument: the bucket's default encryption
        # applies, as it does to every object put without one.
        return arguments

    def _is_current(self, s3: AwsClient) -> bool:
        """Return whether the object is ours and contains the planned wheel."""
        assert self.wheel is not None
        head = _head(s3, self.bucket, self.key)
        metadata = _metadata(head or {})
        return (
            metadata.get(MARKER_METADATA) == MARKER_VALUE
            and metadata.get(SHA256_METADATA) == self.wheel.sha256
        )

    def _delete(self, s3: AwsClient) -> str:
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key}
        if self.etag:
            arguments["IfMatch"] = self.etag
        _call(s3, "DeleteObject", self.bucket, self.key, **arguments)
        return f"deleted {self.target}, which studio-bootstrap uploaded"


def uses_s3(config: Config) -> bool:
    """Return whether the lifecycle script may install the helper from S3."""
    helper = config.helper
    return "s3" in helper.sources and bool(helper.bucket and helper.wheel)


def s3_client(options: AwsOptions, config: Config) -> AwsClient | None:
    """Build the S3 client of the domain's account in the bucket's region."""
    if not uses_s3(config):
        return None
    region = config.helper.bucket_region or config.domain.region
    session = make_session(options.profile)
    return AwsClient(session, "s3", region, options.endpoint_url)


def plan_upload(s3: AwsClient, config: Config) -> ObjectPlan | None:
    """Plan the upload of helper.wheel after reading the object at its key."""
    if not uses_s3(config):
        return None
    bucket, key, wheel_path = _location(config)
    wheel = Wheel.read(wheel_path)
    head = _head(s3, bucket, key)
    size = f"{wheel.size} bytes, sha256 {wheel.sha256[:12]}"
    if head is None:
        return ObjectPlan(UPLOAD, bucket, key, f"{wheel_path.name}, {size}", wheel)
    metadata = _metadata(head)
    etag = head.get("ETag")
    if metadata.get(MARKER_METADATA) != MARKER_VALUE:
        raise ForeignObjectError(
            f"s3://{bucket}/{key} exists and has no {MARKER_METADATA}="
            f"{MARKER_VALUE} metadata, so studio-bootstrap did not upload it and "
            "will not overwrite it: delete it, or set helper.key_prefix or "
            "helper.bucket to a free location"
        )
    if metadata.get(SHA256_METADATA) == wheel.sha256:
        return ObjectPlan(KEEP, bucket, key, f"same wheel ({size})")
    before = metadata.get(SHA256_METADATA, "none")[:12]
    detail = f"{wheel_path.name}, {size}; replaces sha256 {before}"
    return ObjectPlan(OVERWRITE, bucket, key, detail, wheel, etag)


def plan_removal(
    s3: AwsClient, config: Config, other_configs: Iterable[Config] = ()
) -> ObjectPlan | None:
    """Plan the deletion of the uploaded wheel when its metadata marks it as ours.

    ``other_configs`` are the domains that stay registered: an object at the
    same location is kept while one of them uses it.
    NOTE: domains registered from other config files are not known here, so
    unregister deletes a wheel that such a domain with the same bucket,
    prefix and wheel file name still installs from.
    """
    if not uses_s3(config):
        return None
    bucket, key, _ = _location(config)
    users = [
        other.domain.label
        for other in other_configs
        if other.domain.id != config.domain.id
        and uses_s3(other)
        and _location(other)[:2] == (bucket, key)
    ]
    if users:
        detail = f"still used by domain {', '.join(users)}"
        return ObjectPlan(KEEP, bucket, key, detail)
    head = _head(s3, bucket, key)
    if head is None:
        return ObjectPlan(KEEP, bucket, key, "no object")
    if _metadata(head).get(MARKER_METADATA) != MARKER_VALUE:
        detail = "not uploaded by studio-bootstrap, left as it is"
        return ObjectPlan(KEEP, bucket, key, detail)
    detail = "uploaded by studio-bootstrap"
    return ObjectPlan(DELETE, bucket, key, detail, etag=head.get("ETag"))


def wheel_sha256(path: str | Path) -> str:
    """Return the hex sha256 of a wheel file, as the lifecycle script checks it."""
    return Wheel.read(Path(path)).sha256


def _location(config: Config) -> tuple[str, str, Path]:
    helper = config.helper
    assert helper.bucket
    assert helper.key
    assert helper.wheel
    return helper.bucket, helper.key, Path(helper.wheel)


def _head(s3: AwsClient, bucket: str, key: str) -> dict[str, Any] | None:
    """Read the object's metadata, or return None when the key is free.

    S3 returns the same bare 404 for HeadObject on a missing bucket as on a
    missing key, so HeadBucket distinguishes the two.
    """
    arguments: dict[str, Any] = {"Bucket": bucket, "Key": key}
    try:
        return _call(s3, "HeadObject", bucket, key, **arguments)
    except AwsError as error:
        if error.code not in NOT_FOUND_CODES:
            raise
    _call(s3, "HeadBucket", bucket, key, Bucket=bucket)
    return None


def _check_uploaded(
    s3: AwsClient, bucket: str, key: str, sha256: str, size: int
) -> None:
    """Read the object back and raise when it differs from the wheel."""
    arguments: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if _accepts(s3, "HeadObject", "ChecksumMode"):
        arguments["ChecksumMode"] = "ENABLED"
    head = _call(s3, "HeadObject", bucket, key, **arguments)
    problems = []
    if _metadata(head).get(SHA256_METADATA) != sha256:
        problems.append(f"{SHA256_METADATA} metadata differs")
    if head.get("ContentLength") != size:
        problems.append(f"size {head.get('ContentLength')} instead of {size}")
    # S3 returns the checksum of a PutObject only with ChecksumMode. moto
    # 5.2.1 returns none, so there only the metadata and size are compared.
    checksum = head.get("ChecksumSHA256")
    if checksum and checksum != base64.b64encode(bytes.fromhex(sha256)).decode():
        problems.append("ChecksumSHA256 differs")
    if problems:
        raise BootstrapError(
            f"s3://{bucket}/{key} does not hold the uploaded wheel after "
            f"PutObject ({'; '.join(problems)}); run register again"
        )


def _call(s3: AwsClient, operation: str, bucket: str, key: str, **kwargs: Any) -> Any:
    """Call S3 and turn a missing bucket or a denied request into a fix."""
    try:
        return s3.call(operation, f"s3://{bucket}/{key}", **kwargs)
    except AwsError as error:
        raise _explained(error, bucket, key, s3.region) from error


def _explained(error: AwsError, bucket: str, key: str, region: str) -> AwsError:
    """Return the error with the fix for the failures an admin can correct."""
    target = f"s3://{bucket}/{key}"
    if error.code == "NoSuchBucket" or (
        error.operation == "HeadBucket" and error.code in NOT_FOUND_CODES
    ):
        message = (
            f"bucket {bucket} does not exist; create it in the domain's account "
            f"({region}), or set helper.bucket to an existing bucket"
        )
        return AwsError(error.operation, target, "NoSuchBucket", message)
    if error.code in ACCESS_DENIED_CODES:
        needed = {
            "HeadObject": "s3:GetObject on the object and s3:ListBucket on the bucket",
            "HeadBucket": "s3:ListBucket on the bucket",
            "PutObject": "s3:PutObject on the object",
            "DeleteObject": "s3:DeleteObject and s3:GetObject on the object",
        }.get(error.operation, "access to the object")
        message = (
            f"access denied to bucket {bucket}, key {key}; the register-admin policy "
            f"of 'studio-bootstrap iam' grants {needed}, and the bucket policy "
            "and the bucket's KMS key must allow it too"
        )
        return AwsError(error.operation, target, "AccessDenied", message)
    if error.code == "PreconditionFailed":
        message = "the object changed after the plan read it; run the command again"
        return AwsError(error.operation, target, error.code, message)
    return error


def _metadata(head: dict[str, Any]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (head.get("Metadata") or {}).items()}


def _encryption(response: dict[str, Any]) -> str:
    """Describe the encryption that S3 applied and, for SSE-KMS, what readers need."""
    algorithm = response.get("ServerSideEncryption")
    if not algorithm:
        return ""
    if algorithm.startswith("aws:kms"):
        key_id = response.get("SSEKMSKeyId", "the bucket's KMS key")
        return (
            f", encrypted with {algorithm} key {key_id}; the execution roles "
            "need kms:Decrypt on it"
        )
    return f", encrypted with {algorithm}"


def _accepts(s3: AwsClient, operation: str, member: str) -> bool:
    """Return whether this botocore's model has a parameter of an operation."""
    shape = s3.client.meta.service_model.operation_model(operation).input_shape
    return shape is not None and member in shape.members


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BootstrapError(
            f"cannot read helper.wheel {path}: {exc.strerror}; build the wheel "
            "again or fix the path in the config"
        ) from exc


def _digest(body: bytes) -> tuple[str, int]:
    return hashlib.sha256(body).hexdigest(), len(body)


def _base64_sha256(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()
