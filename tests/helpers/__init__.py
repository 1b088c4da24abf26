"""What several test modules share: tiny real models, images, store writers and configs."""
