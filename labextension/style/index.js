import '@xyflow/react/dist/style.css';
import './base.css';
import './sidebar.css';
import './git.css';
import './ai.css';
