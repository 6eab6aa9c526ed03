"""E9106: Firehose delivery streams encrypt what they hold."""
import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

if str(Path(__file__).resolve().parent) not in sys.path:  # cfn-lint loads rule files by path, not as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _shared  # noqa: E402

DESTINATIONS = ("ExtendedS3DestinationConfiguration", "S3DestinationConfiguration")


class FirehoseEncryption(CloudFormationLintRule):
    id = "E9106"
    shortdesc = "Firehose delivery streams are encrypted at rest"
    description = (
        "An AWS::KinesisFirehose::DeliveryStream has DeliveryStreamEncryptionConfigurationInput with a "
        "KeyType (server-side encryption of the buffered records; AWS_OWNED_CMK is enough), or an S3 "
        "destination whose EncryptionConfiguration names a KMS key. checkov has no CloudFormation check for it."
    )
    source_url = "lint/README.md"
    tags = ["project", "security", "firehose"]

    def match(self, cfn):
        matches = []
        for logical_id, resource in _shared.resources(cfn.template, ("AWS::KinesisFirehose::DeliveryStream",)):
            props = _shared.properties(resource)
            stream = props.get("DeliveryStreamEncryptionConfigurationInput")
            if isinstance(stream, dict) and stream.get("KeyType") is not None:
                continue
            destination_kms = False
            for name in DESTINATIONS:
                destination = props.get(name)
                encryption = destination.get("EncryptionConfiguration") if isinstance(destination, dict) else None
                if isinstance(encryption, dict) and isinstance(encryption.get("KMSEncryptionConfig"), dict):
                    destination_kms = True
            if not destination_kms:
                where = ["Resources", logical_id, "Properties"] if "Properties" in resource else ["Resources", logical_id]
                matches.append(RuleMatch(where, f"{logical_id}: add DeliveryStreamEncryptionConfigurationInput "
                                                "(KeyType: AWS_OWNED_CMK) or a KMSEncryptionConfig on its S3 destination"))
        return matches
