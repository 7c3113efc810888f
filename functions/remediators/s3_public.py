"""S3.2 and S3.3 (public read / public write access blocked): the bucket-level Block Public Access remediator.

Security Hub's S3.2 and S3.3 fail for a bucket whose ACL or policy grants everyone read (S3.2) or write (S3.3). The
change is the one S3.8 makes (functions/remediators/s3.py BucketPublicAccessBlock): the four bucket-level Block
Public Access settings, which make S3 ignore public ACLs and restrict public policies, so both controls pass; the
ACL and policy themselves stay as they are, so a rollback restores the access exactly. A bucket public right now
loses that access: the plan says so, and the change then needs the rule's own `enforce`.
"""

from __future__ import annotations

from functions.remediators.base import Rule
from functions.remediators.s3 import BucketPublicAccessBlock


class BucketPublicReadWriteBlocked(BucketPublicAccessBlock):
    """S3.2, S3.3: turn on the four bucket-level Block Public Access settings (as S3.8)."""

    rules = (
        Rule("S3.2", "S3 general purpose buckets should block public read access"),
        Rule("S3.3", "S3 general purpose buckets should block public write access"),
    )
