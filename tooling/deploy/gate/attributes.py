"""The GetAtt values of the stateful resources that are known before a deploy, as AWS
documents them: one table, read by the replacement rule's resolver (a value written as
a literal compares equal to the GetAtt it stands for) and by the rewrite of references
into literals (recover/literals.py)."""
from __future__ import annotations

FORMS = {
    ("AWS::S3::Bucket", "Arn"): "arn:{partition}:s3:::{name}",
    ("AWS::S3::Bucket", "DomainName"): "{name}.s3.amazonaws.com",
    ("AWS::S3::Bucket", "RegionalDomainName"): "{name}.s3.{region}.amazonaws.com",
    ("AWS::S3::Bucket", "DualStackDomainName"): "{name}.s3.dualstack.{region}.amazonaws.com",
    ("AWS::DynamoDB::Table", "Arn"): "arn:{partition}:dynamodb:{region}:{account}:table/{name}",
    ("AWS::KMS::Key", "Arn"): "arn:{partition}:kms:{region}:{account}:key/{name}",  # name: the key id
    ("AWS::KMS::Key", "KeyId"): "{name}",
}


def value(resource_type: str, name: str, attribute: str, region: str, account_id: str, partition: str = "aws") -> str | None:
    """GetAtt `attribute` of the resource whose physical id is `name`; None when not known in
    advance (or when the form needs a region or an account that is not given)."""
    form = FORMS.get((resource_type, attribute))
    if form is None or ("{region}" in form and not region) or ("{account}" in form and not account_id):
        return None
    return form.format(partition=partition, name=name, region=region, account=account_id)
