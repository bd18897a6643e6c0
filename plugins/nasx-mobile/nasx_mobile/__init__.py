"""The ``mobile`` space: Once-for-All's MobileNetV2-style (ProxylessNAS) networks for phones and microcontrollers."""
