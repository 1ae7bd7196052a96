"""What is written for people: the spec-review report (``review``, ``review_render``), sequence
diagrams, the state graph's export, and the atomic writer every report goes through (``atomic``)."""
