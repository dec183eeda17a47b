"""Build a face dataset: crawl photos from the web, then detect, align and crop faces with dlib."""
