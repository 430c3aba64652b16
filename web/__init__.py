"""The aiohttp adapter: pages for people, REST API v1 for programs, one app for both."""
