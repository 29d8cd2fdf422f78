"""`/admin/*`: management of Headrace's resources."""
