from perceptual_edge.cli import main

main()
