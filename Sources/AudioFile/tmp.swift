public enum AudioFilePlaceholder {}
