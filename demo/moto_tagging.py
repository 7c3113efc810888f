"""moto's Resource Groups Tagging API leaves CloudTrail trails out of GetResources (moto 5.2: its CloudTrail backend
does not take part), where AWS's lists every resource type but IAM users and roles and Auto Scaling groups. The
engine's batched tag read (functions/remediators/tagging.py) takes a trail it does not list in the trail's own
Region as untagged, so on moto a trail's exclusion tag would be missed for a finding naming the trail's ARN. This
makes moto's GetResources list the trails of the Region it is asked in (a trail lives in its home Region) that have
tags, with them, as AWS does; filters by type, tag and ARN apply as to every other resource. The tests' in-process
moto and the demo's moto server install it before any request. Nothing like it is in the product."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def list_cloudtrail_trails() -> None:
    """Make moto's GetResources list tagged CloudTrail trails (idempotent)."""
    from moto.cloudtrail.models import cloudtrail_backends  # imported late: heavy, and only moto users need it
    from moto.core.resource_tagging import TaggedResource, make_tag_matcher, match_resource_type
    from moto.resourcegroupstaggingapi.models import ResourceGroupsTaggingAPIBackend

    original = ResourceGroupsTaggingAPIBackend._get_resources_generator
    if getattr(original, "_cspm_trails", False):
        return

    def resources(self: Any, tag_filters: Any = None, resource_type_filters: Any = None,
                  resource_arn_list: Any = None) -> Iterator[Any]:
        yield from original(self, tag_filters, resource_type_filters, resource_arn_list)
        if self.account_id not in cloudtrail_backends or not match_resource_type("cloudtrail:trail",
                                                                                  resource_type_filters):
            return
        backend = cloudtrail_backends[self.account_id][self.region_name]
        matches = make_tag_matcher(tag_filters)
        for trail in list(backend.trails.values()):
            tags = backend.tagging_service.get_tag_dict_for_resource(trail.arn)
            if tags and matches(tags) and (not resource_arn_list or trail.arn in resource_arn_list):
                yield TaggedResource(arn=trail.arn, tags=tags, resource_type="cloudtrail:trail")

    resources._cspm_trails = True  # type: ignore[attr-defined]
    ResourceGroupsTaggingAPIBackend._get_resources_generator = resources  # type: ignore[method-assign]
