"""provisioner: put whole sites of IoT devices onto the Lobaro IoT Platform from a spreadsheet."""

__version__ = "0.1.0"
